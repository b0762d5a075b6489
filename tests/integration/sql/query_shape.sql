-- Shape and projection: LAST, ALIGN BY DEVICE, expressions with IoTDB column names, aliases,
-- ordering and paging, time literals with zones, epoch numbers and now().
CREATE DATABASE root.sh;
CREATE TIMESERIES root.sh.d1.s1 INT32;
CREATE TIMESERIES root.sh.d1.s2 DOUBLE;
CREATE TIMESERIES root.sh.d1.t TEXT;
CREATE TIMESERIES root.sh.d2.s1 INT32;
CREATE TIMESERIES root.sh.d2.s3 BOOLEAN;
CREATE TIMESERIES root.sh.d3.s1 INT32;
CREATE TIMESERIES root.sh.d9.s1 INT64;
INSERT INTO root.sh.d1(timestamp, s1, s2, t) VALUES (1000, 1, 10.5, 'a'), (2000, 2, null, 'b'), (3000, 3, 30.5, null), (4000, null, 40.5, 'd');
INSERT INTO root.sh.d2(timestamp, s1, s3) VALUES (1000, 100, true), (2500, 250, false), (5000, 500, null);
INSERT INTO root.sh.d3(timestamp, s1) VALUES (3000, 3000);
INSERT INTO root.sh.d9(timestamp, s1) VALUES (9000, 9);
-- Out of order and overwritten points.
INSERT INTO root.sh.d1(timestamp, s1) VALUES (500, 0), (2000, 22);
-- Arithmetic and comparisons; computed columns are named with full paths, as IoTDB does.
SELECT s1 + s2, s1 * 2, s2 / s1, s1 % 2, -s1, s1 > 1, s1 > 1 AND s2 < 35 FROM root.sh.d1;
SELECT (s1 + s2) * 2, s1 + s2 + 1, s1 - (s2 - 1), NOT s1 > 1 FROM root.sh.d1;
SELECT s1 BETWEEN 1 AND 2, s1 IN (1, 3), s2 IS NULL, t = 'a' FROM root.sh.d1;
SELECT s1 + s2 AS total, s1 AS one FROM root.sh.d1 WHERE s1 + s2 > 20;
-- Wildcards in expressions expand to every combination.
SELECT s1 + 1 FROM root.sh.d1, root.sh.d2, root.sh.d3;
SELECT s1 + s2 FROM root.sh.d1, root.sh.d2;
-- Arithmetic needs numbers (d2.s3 is BOOLEAN, d1.t TEXT).
SELECT * + 1 FROM root.sh.d2;
SELECT -t FROM root.sh.d1;
-- Value filters with AND/OR, IS NULL and IN.
SELECT s1, s2 FROM root.sh.d1 WHERE s1 > 1 AND s2 < 35;
SELECT s1, s2 FROM root.sh.d1 WHERE s1 >= 22 OR s2 IS NULL;
SELECT * FROM root.sh.d1 WHERE t IN ('a', 'd');
-- Ordering and paging.
SELECT s1 FROM root.sh.d1 ORDER BY TIME DESC LIMIT 2 OFFSET 1;
SELECT * FROM root.sh.d1, root.sh.d2 SLIMIT 2 SOFFSET 2 LIMIT 3;
-- Time literals: epoch numbers, ISO-8601 with and without zones (the session is UTC), now().
SELECT s1 FROM root.sh.d1 WHERE time >= 1970-01-01T00:00:02Z AND time < 1970-01-01T08:00:04+08:00;
SELECT s1 FROM root.sh.d1 WHERE time > 1970-01-01T00:00:01 AND time <= 3000;
SELECT s1 FROM root.sh.d1 WHERE time >= 1970-01-01 00:00:02.000;
SELECT s1 FROM root.sh.d1 WHERE time < now() - 1d AND time > now() - 100000d;
SELECT count(s1) FROM root.sh.d1 WHERE time > now();
SELECT s1 FROM root.sh.d1 WHERE time >= 2000 - 1000 AND time < 1970-01-01T00:00:01Z + 1s;
-- LAST: newest point per series (Time, Timeseries, Value, DataType).
SELECT LAST s1 FROM root.sh.d1;
SELECT LAST * FROM root.sh.**;
SELECT LAST * FROM root.sh.** LIMIT 2 OFFSET 1;
SELECT LAST s1, s2 FROM root.sh.d1 WHERE time >= 3000;
SELECT LAST * FROM root.sh.** WHERE time > 2500;
SELECT LAST * FROM root.sh.** ORDER BY TIMESERIES DESC LIMIT 3;
SELECT LAST s1 FROM root.sh.* WHERE time >= 6000;
SELECT LAST s1 FROM root.sh.d1 WHERE s1 > 1;
SELECT LAST count(s1) FROM root.sh.d1;
-- ALIGN BY DEVICE: Time, Device, then measurements (the union over devices, in order of appearance).
SELECT * FROM root.sh.d1, root.sh.d2, root.sh.d3 ALIGN BY DEVICE;
SELECT s1, s2 FROM root.sh.d1, root.sh.d2 ALIGN BY DEVICE;
SELECT s1 FROM root.sh.d1, root.sh.d2, root.sh.d3 WHERE s1 > 2 ALIGN BY DEVICE;
SELECT s1 FROM root.sh.d1, root.sh.d2 ORDER BY TIME DESC LIMIT 4 ALIGN BY DEVICE;
SELECT s1 FROM root.sh.d1, root.sh.d2 LIMIT 2 OFFSET 3 ALIGN BY DEVICE;
SELECT s1 + 1, s1 * s2 FROM root.sh.d1 ALIGN BY DEVICE;
SELECT * FROM root.sh.d1, root.sh.d2 SLIMIT 2 SOFFSET 1 ALIGN BY DEVICE;
-- One measurement, one type: d9.s1 is INT64 where the others are INT32.
SELECT s1 FROM root.sh.** ALIGN BY DEVICE;
SELECT count(s1), max_value(s1) FROM root.sh.d1, root.sh.d2 ALIGN BY DEVICE;
SELECT count(s1) FROM root.sh.d1, root.sh.d2 GROUP BY ([0, 6000), 2s) ALIGN BY DEVICE;
SELECT count(*) FROM root.sh.d1, root.sh.d2 GROUP BY ([0, 6000), 3s) HAVING count(s1) > 1 ALIGN BY DEVICE;
SELECT sum(s1) FROM root.sh.d1, root.sh.d2 GROUP BY ([0, 6000), 2s) FILL(PREVIOUS) ALIGN BY DEVICE;
SELECT s1 FROM root.sh.d1 FILL(PREVIOUS) ALIGN BY DEVICE;
SELECT root.sh.d1.s1 FROM root.sh.d1 ALIGN BY DEVICE;
SELECT count(s1) FROM root.sh.** GROUP BY LEVEL = 1 ALIGN BY DEVICE;
-- Deleted ranges disappear from raw rows, LAST and aggregates.
DELETE FROM root.sh.d1.s2 WHERE time >= 3000;
SELECT s1, s2 FROM root.sh.d1;
SELECT LAST s2 FROM root.sh.d1;
