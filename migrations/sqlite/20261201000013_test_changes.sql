-- PostgreSQL only: there, a trigger announces each change to a test row to every instance of
-- the service. SQLite has no notifications; its instances read the test row on every use.
SELECT 1;
