-- PostgreSQL only: there, a trigger announces each change to a question row (by tenant) to
-- every instance of the service. SQLite has no notifications; its instances read rule pools
-- at every start.
SELECT 1;
