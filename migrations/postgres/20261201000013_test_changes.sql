-- Every change to a test row (an update of any field, or a delete) is announced on the channel
-- "assessment_tests" with the test's id, when its transaction commits. Each instance of the
-- service listens and forgets its copy of that test at once, so the learner's views of a
-- published test can be served without reading the test row on every request. A trigger, not
-- the service's own code, so that no path that changes a test can forget to announce it.
CREATE FUNCTION "announceTestChange"() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('assessment_tests', OLD."testId"::text);
    ELSE
        PERFORM pg_notify('assessment_tests', NEW."testId"::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER "testChanged" AFTER UPDATE OR DELETE ON "tests"
    FOR EACH ROW EXECUTE FUNCTION "announceTestChange"();
