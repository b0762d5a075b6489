-- GROUP BY TAGS: aggregates over the series that share tag values (IoTDB 1.3's example data), also
-- per time window; a series without the tag is in the NULL group.
CREATE DATABASE root.factory1;
CREATE TIMESERIES root.factory1.d1.temperature WITH DATATYPE=FLOAT TAGS(city=Beijing, workshop=w1);
CREATE TIMESERIES root.factory1.d2.temperature WITH DATATYPE=FLOAT TAGS(city=Beijing, workshop=w1);
CREATE TIMESERIES root.factory1.d3.temperature WITH DATATYPE=FLOAT TAGS(city=Beijing, workshop=w2);
CREATE TIMESERIES root.factory1.d5.temperature WITH DATATYPE=FLOAT TAGS(city=Shanghai, workshop=w1);
CREATE TIMESERIES root.factory1.d8.temperature WITH DATATYPE=FLOAT;
CREATE TIMESERIES root.factory1.d8.humidity WITH DATATYPE=DOUBLE TAGS(city=Beijing);
INSERT INTO root.factory1.d1(time, temperature) VALUES (1000, 104.0), (3000, 104.2), (7000, 104.1);
INSERT INTO root.factory1.d2(time, temperature) VALUES (1000, 104.4), (5000, 103.3);
INSERT INTO root.factory1.d3(time, temperature) VALUES (1000, 103.9), (7000, 106.9);
INSERT INTO root.factory1.d5(time, temperature) VALUES (1000, 112.9), (7000, 113.0);
INSERT INTO root.factory1.d8(time, temperature) VALUES (1000, 50.0), (3000, 52.1);
INSERT INTO root.factory1.d8(time, humidity) VALUES (2000, 40.0);
SELECT count(temperature), max_value(temperature) FROM root.factory1.** GROUP BY TAGS(city);
SELECT count(temperature) FROM root.factory1.** GROUP BY TAGS(city, workshop);
SELECT count(temperature), sum(humidity) FROM root.factory1.** GROUP BY TAGS(city);
SELECT count(temperature) AS n FROM root.factory1.** WHERE time < 5000 GROUP BY ([1000, 9000), 4000ms), TAGS(city);
SELECT count(temperature) FROM root.factory1.** GROUP BY TAGS(nosuch);
SELECT count(temperature) FROM root.factory1.** GROUP BY TAGS(city) HAVING count(temperature) > 1;
SELECT count(temperature) FROM root.factory1.** WHERE temperature > 100 GROUP BY TAGS(city);
SELECT temperature FROM root.factory1.** GROUP BY TAGS(city);
SELECT count(temperature + 1) FROM root.factory1.** GROUP BY TAGS(city);
