-- Every change to a question row (insert, update, delete) is announced on the channel
-- "assessment_tests" as "bank:<tenantId>" when its transaction commits (identical
-- notifications of one transaction are sent once). The instances keep the rule pools of
-- published rule-based tests while their tenant's bank does not change (store/watch.rs).
CREATE FUNCTION "announceBankChange"() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('assessment_tests', 'bank:' || OLD."tenantId"::text);
    ELSE
        PERFORM pg_notify('assessment_tests', 'bank:' || NEW."tenantId"::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER "bankChanged" AFTER INSERT OR UPDATE OR DELETE ON "questions"
    FOR EACH ROW EXECUTE FUNCTION "announceBankChange"();
