-- GROUP BY SESSION(gap) and COUNT(path, size[, ignoreNull]): windows made by the rows, shown at
-- their first row (IoTDB 1.3's examples, shortened).
CREATE TIMESERIES root.ev.d.soc DOUBLE;
CREATE TIMESERIES root.ev.d.cs INT32;
INSERT INTO root.ev.d(time, soc, cs) VALUES (1, 14.0, 1), (2, 16.0, 1), (3, 16.0, 0), (4, 16.0, 0), (5, 18.0, 1);
INSERT INTO root.ev.d(time, soc, cs) VALUES (6, 24.0, 1), (7, 36.0, 1), (9, 45.0, 1), (10, 60.0, 1);
INSERT INTO root.ev.d(time, soc) VALUES (8, 36.0);
INSERT INTO root.ev.d(time, soc, cs) VALUES (1000, 70.0, 0), (1001, 71.0, 0);
SELECT count(soc), first_value(soc), last_value(soc) FROM root.ev.d GROUP BY SESSION(100ms);
SELECT count(soc) FROM root.ev.d GROUP BY SESSION(1ms);
SELECT count(cs), first_value(soc) FROM root.ev.d GROUP BY COUNT(cs, 5);
SELECT count(cs), first_value(soc) FROM root.ev.d GROUP BY COUNT(cs, 5, ignoreNull=false);
-- With ignoreNull (the default) a row where cs has no value (t=8) is in no group: soc's point
-- there is not counted, though the window spans it.
SELECT __endTime, count(soc), count(cs) FROM root.ev.d GROUP BY COUNT(cs, 5);
SELECT count(soc) FROM root.ev.d WHERE time < 100 GROUP BY COUNT(soc, 4);
SELECT count(soc) FROM root.ev.* GROUP BY SESSION(100ms) ALIGN BY DEVICE;
SELECT count(soc) FROM root.ev.d WHERE soc > 20 GROUP BY SESSION(100ms);
SELECT count(soc) FROM root.ev.d GROUP BY SESSION(1mo);
SELECT count(soc) FROM root.ev.d GROUP BY COUNT(*, 2);
SELECT count(soc) FROM root.ev.d GROUP BY COUNT(cs, 0);
-- __endTime: the window's last time (with any GROUP BY windows).
SELECT __endTime, count(soc) FROM root.ev.d GROUP BY SESSION(100ms);
SELECT __endTime, count(cs) FROM root.ev.d GROUP BY COUNT(cs, 5, ignoreNull=false);
SELECT count(soc), __endTime FROM root.ev.d WHERE time < 20 GROUP BY ([0, 12), 5ms);
SELECT __endTime, count(soc) FROM root.ev.* GROUP BY SESSION(100ms) ALIGN BY DEVICE;
SELECT __endTime FROM root.ev.d;
-- GROUP BY VARIATION and CONDITION (IoTDB 1.3's example data and results).
CREATE TIMESERIES root.va.d.s1 DOUBLE;
CREATE TIMESERIES root.va.d.s2 DOUBLE;
CREATE TIMESERIES root.va.d.s3 DOUBLE;
CREATE TIMESERIES root.va.d.s5 DOUBLE;
CREATE TIMESERIES root.va.d.s6 DOUBLE;
INSERT INTO root.va.d(time, s1, s2, s3, s5, s6) VALUES (0, 4.5, 9.0, 0.0, 9.0, 8.25), (10, null, 19.0, 10.0, 19.0, 8.25), (20, 24.5, 29.0, null, 29.0, null);
INSERT INTO root.va.d(time, s1, s2, s3, s5, s6) VALUES (30, 34.5, null, 30.0, null, null), (40, 44.5, 49.0, 40.0, 49.0, 8.25), (50, null, 59.0, 50.0, 59.0, 6.25);
INSERT INTO root.va.d(time, s1, s2, s3, s5, s6) VALUES (60, 64.5, 69.0, 60.0, 69.0, null), (70, 74.5, 79.0, null, 79.0, 3.25), (80, 84.5, 89.0, 80.0, 89.0, 3.25);
INSERT INTO root.va.d(time, s1, s2, s3, s5, s6) VALUES (90, 94.5, 99.0, 90.0, 99.0, 3.25), (150, 66.5, 77.0, 90.0, 99.0, 9.25);
SELECT __endTime, avg(s1), count(s2), sum(s3) FROM root.va.d GROUP BY VARIATION(s6);
SELECT __endTime, avg(s1), count(s2), sum(s3) FROM root.va.d GROUP BY VARIATION(s6, ignoreNull=false);
SELECT __endTime, avg(s1), count(s2), sum(s3) FROM root.va.d GROUP BY VARIATION(s6, 4);
SELECT __endTime, avg(s1), count(s2), sum(s3) FROM root.va.d GROUP BY VARIATION(s6 + s5, 10);
CREATE TIMESERIES root.co.car.soc DOUBLE;
CREATE TIMESERIES root.co.car.cs INT32;
CREATE TIMESERIES root.co.car.vs INT32;
INSERT INTO root.co.car(time, soc, cs, vs) VALUES (1, 14.0, 1, 1), (2, 16.0, 1, 1), (3, 16.0, 0, 1), (4, 16.0, 0, 1), (5, 18.0, 1, 1);
INSERT INTO root.co.car(time, soc, cs, vs) VALUES (6, 24.0, 1, 1), (7, 36.0, 1, 1), (8, 36.0, null, 1), (9, 45.0, 1, 1), (10, 60.0, 1, 1);
SELECT max_time(cs), count(vs), last_value(soc) FROM root.co.car GROUP BY CONDITION(cs = 1, KEEP >= 2, ignoringNull = true);
SELECT max_time(cs), count(vs), last_value(soc) FROM root.co.car GROUP BY CONDITION(cs = 1, KEEP >= 2, ignoringNull = false);
SELECT count(vs) FROM root.co.car GROUP BY CONDITION(cs = 1, 2);
SELECT count(vs) FROM root.co.car GROUP BY CONDITION(cs = 1);
