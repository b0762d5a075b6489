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
