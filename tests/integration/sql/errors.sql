-- Bad statements get the IoTDB status code a user expects, and change nothing.
SELEC * FROM root.db;
SELECT * FORM root.db;
CREATE DATABASE db;
INSERT INTO root.e.d(timestamp, a, b) VALUES (1, 2);
INSERT INTO root.e.d(timestamp, a) VALUES (1, 'text');
INSERT INTO root.e.d(timestamp, a) VALUES (2, 1.0);
CREATE TIMESERIES root.e.d.i INT32;
INSERT INTO root.e.d(timestamp, i) VALUES (3, 99999999999);
INSERT INTO root.e.d(timestamp, i) VALUES (3, 'x');
INSERT INTO root.e.d(timestamp, i, a) VALUES (4, 1, 'ok'), (5, 'bad', 'no');
SELECT * FROM root.e.d;
INSERT INTO root.e.d(timestamp, i) VALUES (2023-02-30T00:00:00, 1);
SELECT * FROM root.e.** WHERE time > 'not a time';
DELETE FROM root.e.d.i WHERE time > 1 OR time < 0;
SHOW TIMESERIES root.e.**;
