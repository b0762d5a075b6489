-- SELECT INTO: results written to target series, matched in order or through the placeholders
-- :: and ${i}; IoTDB 1.3's report (SourceColumn, TargetTimeseries, Written).
CREATE TIMESERIES root.si.d1.s1 INT32;
CREATE TIMESERIES root.si.d1.s2 DOUBLE;
CREATE TIMESERIES root.si.d2.s1 INT32;
INSERT INTO root.si.d1(time, s1, s2) VALUES (1, 1, 1.5);
INSERT INTO root.si.d1(time, s1, s2) VALUES (2, 2, 2.5);
INSERT INTO root.si.d1(time, s2) VALUES (3, 3.5);
INSERT INTO root.si.d2(time, s1) VALUES (1, 10);
SELECT s1, s2 INTO root.copy.d1(t1, t2) FROM root.si.d1;
SELECT t1, t2 FROM root.copy.d1;
SELECT * INTO root.bk.::(::) FROM root.si.**;
SELECT * FROM root.bk.**;
SELECT s1 INTO root.lvl.${1}_${2}(v_${3}) FROM root.si.d1;
SELECT v_s1 FROM root.lvl.si_d1;
SELECT count(s2), sum(s2) INTO root.agg.d1(cnt, total) FROM root.si.d1 GROUP BY ([0, 4), 2ms);
SELECT cnt, total FROM root.agg.d1;
SELECT max_value(s1) INTO root.agg.d1(mx) FROM root.si.d1;
SELECT mx FROM root.agg.d1;
SELECT s1 INTO root.dev.::(copied_${3}) FROM root.si.* ALIGN BY DEVICE;
SELECT * FROM root.dev.**;
SELECT s1 + 1 INTO root.expr.d1(a), ALIGNED root.expr.d2(a) FROM root.si.d1, root.si.d2 ALIGN BY DEVICE;
SELECT a FROM root.expr.* ALIGN BY DEVICE;
SELECT s1 INTO root.copy.d1(t2) FROM root.si.d1;
SELECT s1, s2 INTO root.bad.d1(x) FROM root.si.d1;
SELECT s1 + 1 INTO root.bad.d1(::) FROM root.si.d1;
SELECT s1 INTO root.bad.d1(x, y) FROM root.si.* ALIGN BY DEVICE;
SELECT LAST s1 INTO root.bad.d1(x) FROM root.si.d1;
SELECT s1, s2 INTO root.bad.d1(x, x) FROM root.si.d1;
