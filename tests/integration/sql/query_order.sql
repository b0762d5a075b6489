-- ORDER BY a selected expression (or its alias), several keys, NULLS FIRST/LAST, DEVICE under
-- ALIGN BY DEVICE; then OFFSET/LIMIT, as IoTDB 1.3 does.
CREATE TIMESERIES root.o.d1.s INT32;
CREATE TIMESERIES root.o.d1.t TEXT;
CREATE TIMESERIES root.o.d2.s INT32;
INSERT INTO root.o.d1(time, s, t) VALUES (1, 30, 'c');
INSERT INTO root.o.d1(time, s, t) VALUES (2, 10, 'a');
INSERT INTO root.o.d1(time, s, t) VALUES (3, 20, 'b');
INSERT INTO root.o.d1(time, t) VALUES (4, 'a');
INSERT INTO root.o.d2(time, s) VALUES (1, 5);
INSERT INTO root.o.d2(time, s) VALUES (5, 50);
SELECT s FROM root.o.d1 ORDER BY s;
SELECT s FROM root.o.d1 ORDER BY s DESC;
SELECT s FROM root.o.d1 ORDER BY s DESC NULLS FIRST;
SELECT s, t FROM root.o.d1 ORDER BY t, s DESC;
SELECT s * 2 AS double FROM root.o.d1 ORDER BY double DESC LIMIT 2;
SELECT s FROM root.o.d1 ORDER BY s DESC LIMIT 1 OFFSET 1;
SELECT s FROM root.o.d1 ORDER BY TIME DESC;
SELECT s FROM root.o.* ORDER BY TIME DESC, s ALIGN BY DEVICE;
SELECT s FROM root.o.* ORDER BY DEVICE DESC, TIME ALIGN BY DEVICE;
SELECT s FROM root.o.* ORDER BY s DESC ALIGN BY DEVICE;
SELECT count(s) FROM root.o.* GROUP BY ([1, 7), 2ms) ORDER BY count(s) DESC, TIME ALIGN BY DEVICE;
SELECT max_value(s) FROM root.o.d1 GROUP BY ([1, 5), 1ms) ORDER BY max_value(s) DESC;
SELECT s FROM root.o.d1 ORDER BY t;
SELECT s FROM root.o.* ORDER BY s;
SELECT s FROM root.o.d1 ORDER BY DEVICE;
SELECT s FROM root.o.d1 ORDER BY s SLIMIT 1;
SELECT LAST s FROM root.o.d1 ORDER BY s;
