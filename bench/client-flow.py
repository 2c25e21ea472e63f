#!/usr/bin/env python3
"""The learner flow through a client generated from the OpenAPI document (run by bench/client.sh).

Every request goes through the generated package (`api/<tag>/<operation>.py`'s `sync_detailed`
and the generated `models`): if the document is wrong in a way a client generator cares about
(a missing parameter, a wrong enum value, a body the model cannot parse), a step fails here
instead of in somebody's integration. There is no hand-written HTTP request in this file.

Two checks per response:
- the status is the one the flow expects, and `.parsed` is the model the generated client maps
  that status to (the error `Envelope` or None would mean the step did not happen);
- the raw JSON body (`.content`) validates against the schema the document gives for that
  operation and status (OAS31Validator, `#/components/...` refs resolved in the whole document,
  formats checked). This also covers the routes whose schema is still a bare object today: the
  generated model then takes anything, the schema check is the only one.

Usage: client-flow.py BASE_URL GENERATED_PACKAGE_DIR OPENAPI_JSON
"""

import argparse
import importlib
import inspect
import json
import re
import sys
import uuid
from pathlib import Path

import attrs
from openapi_schema_validator import OAS31Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# Fixed ids, so that a failing run can be replayed against the same rows by hand.
TENANT = "070f232a-9f01-474a-b34d-5b5c412e9f66"
ORG = "a9a42699-4b3c-464d-a119-087a3cea2d58"
AUTHOR = "2223d6a2-6651-4860-82fc-e71789a0b955"
LEARNER = "c2351e37-2d51-4c68-bbaf-384dff8e9cc8"
MARKS = 2.0
NO_SUCH_TEST = "5b0d3c1e-8f4a-4e6b-9c2d-7a1e3f5b9d0c"

DOC_URI = "urn:assessment-service:openapi"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


class Failure(Exception):
    pass


def pointer(*parts):
    """A JSON pointer (RFC 6901) into the document."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def dig(value, *keys):
    """value[k1][k2]...; a missing key is a failure naming the whole path."""
    for i, key in enumerate(keys):
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise Failure(f"no {'.'.join(map(str, keys[: i + 1]))} in {json.dumps(value)[:300]}")
    return value


class Flow:
    def __init__(self, base_url, package_dir, doc_path):
        self.doc = json.loads(Path(doc_path).read_text())
        package_dir = Path(package_dir).resolve()
        # With `--meta none` the output folder is the package itself: import it by its name.
        sys.path.insert(0, str(package_dir.parent))
        self.pkg = package_dir.name
        self.models = importlib.import_module(f"{self.pkg}.models")
        self.errors = importlib.import_module(f"{self.pkg}.errors")
        client_mod = importlib.import_module(f"{self.pkg}.client")
        self.ops = {}
        for path, item in self.doc["paths"].items():
            for method in METHODS:
                op = item.get(method)
                if op and op.get("operationId"):
                    self.ops[op["operationId"]] = (method, path, op)
        # The generated functions are typed as wanting an AuthenticatedClient, because every
        # scoped operation lists `bearerAuth` (the generator ignores the `{}` alternative that
        # makes it optional). Header mode has no token: a plain Client is what a caller uses.
        # The response hook only records what came back, so that a body the generated model
        # cannot parse is still reported (and schema-checked).
        self.last = None
        self.client = client_mod.Client(
            base_url=base_url,
            raise_on_unexpected_status=True,
            timeout=30.0,
            httpx_args={"event_hooks": {"response": [self._record]}},
        )
        self.registry = Registry().with_resource(
            DOC_URI, Resource.from_contents(self.doc, default_specification=DRAFT202012)
        )
        self.checked = 0
        self.schema_failures = []
        self.loose = []

    def _record(self, response):
        response.read()
        self.last = response

    def module(self, op_id):
        op = self.ops[op_id][2]
        tag = re.sub(r"\W+", "_", op["tags"][0]).lower()
        return importlib.import_module(f"{self.pkg}.api.{tag}.{op_id}")

    def check_generated(self, needed):
        """Every operation of the document should have its module; the flow's ones must."""
        missing = []
        for op_id in sorted(self.ops):
            try:
                self.module(op_id)
            except ImportError:
                missing.append(op_id)
        for op_id in missing:
            method, path, _ = self.ops[op_id]
            print(f"WARNING: the generator skipped {op_id} ({method.upper()} {path})")
        if set(missing) & set(needed):
            raise Failure(
                "the generated client lacks operations the flow needs: "
                + ", ".join(sorted(set(missing) & set(needed)))
                + " (see the generator's warnings above)"
            )

    def success_model(self, mod, status):
        """The class the generated `_parse_response` builds for `status` (None: no body)."""
        src = inspect.getsource(mod._parse_response)
        m = re.search(
            rf"status_code == {status}:\s*\n\s*response_{status}\s*=\s*(\w+)\.from_dict\(", src
        )
        if m:
            return getattr(mod, m.group(1))
        if re.search(rf"response_{status}\s*=\s*cast\(Any, None\)", src):
            return None
        raise Failure(f"{mod.__name__}: the generated client has no parser for HTTP {status}")

    def call(self, op_id, status, user, **kwargs):
        """One operation through the generated client; returns (parsed model, response)."""
        mod = self.module(op_id)
        method, path, _ = self.ops[op_id]
        self.last = None
        # The generated functions put header parameters into httpx as given, and httpx takes
        # only str/bytes: a uuid.UUID (what `format: uuid` makes them typed as) raises
        # TypeError. So the tenancy ids are passed as their strings.
        try:
            resp = mod.sync_detailed(
                client=self.client, tenantid=TENANT, organisationid=ORG, userid=user, **kwargs
            )
        except self.errors.UnexpectedStatus as e:
            self.validate(op_id, e.status_code, e.content)
            raise Failure(
                f"{op_id} ({method.upper()} {path}): HTTP {e.status_code} is not documented: "
                f"{e.content[:500]!r}"
            )
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001 -- whatever the generated code raised is the finding
            got = self.last
            if got is not None:
                self.validate(op_id, got.status_code, got.content)
            raise Failure(
                f"{op_id} ({method.upper()} {path}): the generated client could not handle the "
                + (f"HTTP {got.status_code} answer" if got is not None else "request")
                + f": {type(e).__name__}: {e}"
                + (f"\n  body: {got.content[:800]!r}" if got is not None else "")
            )
        code = int(resp.status_code)
        if code != status:
            self.validate(op_id, code, resp.content)
            raise Failure(
                f"{op_id} ({method.upper()} {path}): HTTP {code}, expected {status}: "
                f"{resp.content[:800]!r}"
            )
        want = self.success_model(mod, status)
        problem = None
        if want is None:
            model = None
            if resp.parsed is not None or resp.content:
                problem = f"HTTP {status} should have no body: {resp.content[:300]!r}"
        elif not isinstance(resp.parsed, want):
            model = type(resp.parsed).__name__
            problem = f"HTTP {status} parsed as {model}, expected {want.__name__}"
        elif typed(resp.parsed):
            model = want.__name__
        else:
            model = f"{want.__name__} (untyped: additional properties only)"
        self.validate(op_id, code, resp.content, model)
        if problem:
            raise Failure(f"{op_id} ({method.upper()} {path}): {problem}")
        return resp.parsed, resp

    def validate(self, op_id, status, content, model=None):
        """The raw body against the document's schema for (operation, status); one line each."""
        method, path, op = self.ops[op_id]
        label = f"{status} {method.upper()} {path} ({op_id})"
        if model is not None:
            label += f" -> {model}"
        self.checked += 1
        documented = op.get("responses", {}).get(str(status))
        if documented is None:
            self.schema_failures.append(f"{label}: status not documented")
            print(f"FAIL   {label}: status not documented")
            return
        media = (documented.get("content") or {}).get("application/json")
        if media is None:
            if content:
                self.schema_failures.append(f"{label}: documented without a body, got one")
                print(f"FAIL   {label}: documented without a body, got {content[:200]!r}")
            else:
                print(f"ok     {label}: no body, as documented")
            return
        try:
            body = json.loads(content)
        except ValueError:
            self.schema_failures.append(f"{label}: body is not JSON")
            print(f"FAIL   {label}: body is not JSON: {content[:200]!r}")
            return
        where = pointer(
            "paths", path, method, "responses", str(status), "content", "application/json", "schema"
        )
        schema = media["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else "inline schema"
        validator = OAS31Validator(
            {"$ref": DOC_URI + "#" + where},
            registry=self.registry,
            format_checker=OAS31Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            for e in errors[:10]:
                at = "/".join(map(str, e.absolute_path)) or "(root)"
                self.schema_failures.append(f"{label}: at {at}: {e.message[:300]}")
            print(f"FAIL   {label}: {len(errors)} schema error(s) against {name}:")
            for e in errors[:10]:
                at = "/".join(map(str, e.absolute_path)) or "(root)"
                print(f"         at {at}: {e.message[:300]}")
            return
        # A schema that says no more than "an object" checks nothing: say so, so the
        # loose places stay visible until they are typed.
        resolved = schema
        if "$ref" in schema:
            resolved = self.doc["components"]["schemas"].get(name, schema)
        tag = ""
        if resolved in ({"type": "object"}, {}):
            tag = "  [LOOSE: schema is a bare object]"
            self.loose.append(f"{status} {method.upper()} {path} ({op_id})")
        print(f"ok     {label}: valid against {name}{tag}")


def typed(model):
    """Is this a generated model with fields (not a bare additional-properties object)?"""
    return any(a.name != "additional_properties" for a in attrs.fields(type(model)))


def result_of(model):
    """The envelope's `result`, as JSON, from a typed or a generic generated model."""
    return dig(model.to_dict(), "result")


def expect(cond, message):
    if not cond:
        raise Failure(message)


NEEDED = [
    "tests_create",
    "sections_create",
    "questions_create",
    "tests_add_question",
    "tests_author_hierarchy",
    "tests_publish",
    "tests_learner_hierarchy",
    "tests_user_status",
    "attempts_start",
    "attempts_questions",
    "attempts_save_answers",
    "attempts_resume",
    "attempts_submit",
    "reviews_answersheet",
    "tests_get_one",
]


def run(f):
    m = f.models
    f.check_generated(NEEDED)

    # Authoring: a plain test, a section, an mcq with one correct option, linked, published.
    # These responses have typed models (Envelope_*): they are read through their attributes.
    created, _ = f.call(
        "tests_create",
        201,
        AUTHOR,
        body=m.TestIn(type_=m.TestType.PLAIN, title="Client flow", passing_marks=1.0, attempts=1),
    )
    test_id = created.result.test_id
    section, _ = f.call(
        "sections_create", 201, AUTHOR, body=m.SectionIn(title="Section 1", test_id=test_id)
    )
    section_id = section.result.section_id
    question, _ = f.call(
        "questions_create",
        201,
        AUTHOR,
        body=m.QuestionIn(
            text="2 + 2 = ?",
            type_=m.QuestionType.MCQ,
            marks=MARKS,
            options=[
                m.OptionIn(text="3", is_correct=False),
                m.OptionIn(text="4", is_correct=True),
                m.OptionIn(text="5", is_correct=False),
            ],
        ),
    )
    q = question.result
    question_id = q.question_id
    expect(len(q.options) == 3, f"questions_create: {len(q.options)} options, expected 3")
    correct = [o.question_option_id for o in q.options if o.is_correct]
    expect(len(correct) == 1, f"questions_create: {len(correct)} correct options, expected 1")
    f.call(
        "tests_add_question",
        201,
        AUTHOR,
        id=test_id,
        body=m.AddQuestionIn(section_id=section_id, question_id=question_id),
    )
    f.call("tests_author_hierarchy", 200, AUTHOR, id=test_id)
    published, _ = f.call("tests_publish", 201, AUTHOR, id=test_id)
    expect(
        published.result.status == m.TestStatus.PUBLISHED,
        f"tests_publish: status {published.result.status}",
    )
    expect(
        published.result.total_marks == MARKS,
        f"tests_publish: totalMarks {published.result.total_marks}, expected {MARKS}",
    )

    # The learner's views. Some are still documented as bare objects, so their model is a
    # generic one today: they are read as the envelope's `result` through to_dict(), which a
    # typed model has too (then every field has been parsed into its type and written back).
    # So these lines keep working, and check more, once the document types them.
    view, resp = f.call("tests_learner_hierarchy", 200, LEARNER, id=test_id)
    text = json.dumps(result_of(view))
    expect(str(question_id) in text, "tests_learner_hierarchy: the question is not in the view")
    expect(
        all(str(o.question_option_id) in text for o in q.options),
        "tests_learner_hierarchy: the options are not all in the view",
    )
    expect(
        '"isCorrect"' not in resp.content.decode(),
        "tests_learner_hierarchy: the learner's view shows answer keys",
    )
    etag = resp.headers.get("etag")
    expect(etag, "tests_learner_hierarchy: no ETag header")
    f.call("tests_learner_hierarchy", 304, LEARNER, id=test_id, if_none_match=etag)
    status, _ = f.call("tests_user_status", 200, LEARNER, id=test_id, user_id=LEARNER)
    st = result_of(status)
    expect(
        dig(st, "attemptsMade") == 0 and dig(st, "canAttempt") is True,
        f"tests_user_status before the start: {json.dumps(st)[:400]}",
    )

    started, _ = f.call("attempts_start", 201, LEARNER, test_id=test_id)
    attempt_id = started.result.attempt_id
    paper, resp = f.call("attempts_questions", 200, LEARNER, attempt_id=attempt_id, user_id=LEARNER)
    questions = result_of(paper)
    expect(
        isinstance(questions, list) and len(questions) == 1,
        f"attempts_questions: expected one question: {json.dumps(questions)[:400]}",
    )
    expect(
        dig(questions, 0, "questionId") == str(question_id),
        "attempts_questions: not the test's question",
    )
    expect(len(dig(questions, 0, "options")) == 3, "attempts_questions: not 3 options")
    expect(
        '"isCorrect"' not in resp.content.decode(),
        "attempts_questions: the paper shows answer keys",
    )
    etag = resp.headers.get("etag")
    expect(etag, "attempts_questions: no ETag header")
    f.call(
        "attempts_questions",
        304,
        LEARNER,
        attempt_id=attempt_id,
        user_id=LEARNER,
        if_none_match=etag,
    )

    saved, _ = f.call(
        "attempts_save_answers",
        201,
        LEARNER,
        attempt_id=attempt_id,
        body=m.AnswersIn(
            answers=[
                m.AnswerIn(
                    question_id=question_id, answer=m.Answer(selected_option_ids=[correct[0]])
                )
            ]
        ),
    )
    expect(
        saved.result.unchanged == [], f"attempts_save_answers: unchanged {saved.result.unchanged}"
    )
    resumed, _ = f.call("attempts_resume", 200, LEARNER, attempt_id=attempt_id, user_id=LEARNER)
    expect(
        len(resumed.result.answers) == 1,
        f"attempts_resume: {len(resumed.result.answers)} answers, expected 1",
    )

    submitted, _ = f.call("attempts_submit", 201, LEARNER, attempt_id=attempt_id)
    s = submitted.result
    expect(s.attempt_id == attempt_id, f"attempts_submit: attemptId {s.attempt_id}")
    expect(s.score == MARKS, f"attempts_submit: score {s.score}, expected {MARKS}")
    expect(s.total_marks == MARKS, f"attempts_submit: totalMarks {s.total_marks}")
    expect(
        s.submission_type == m.SubmissionType.SELF,
        f"attempts_submit: submissionType {s.submission_type}",
    )

    sheet, resp = f.call("reviews_answersheet", 200, LEARNER, attempt_id=attempt_id)
    sh = result_of(sheet)
    expect(
        dig(sh, "attempt", "attemptId") == str(attempt_id)
        and dig(sh, "attempt", "status") == "S"
        and dig(sh, "attempt", "score") == MARKS,
        f"reviews_answersheet: attempt {json.dumps(dig(sh, 'attempt'))[:400]}",
    )
    expect(
        [dig(a, "questionId") for a in dig(sh, "answers")] == [str(question_id)],
        "reviews_answersheet: not the answered question",
    )
    expect(dig(sh, "answers", 0, "score") == MARKS, "reviews_answersheet: the answer's score")
    f.call(
        "reviews_answersheet",
        304,
        LEARNER,
        attempt_id=attempt_id,
        if_none_match=resp.headers.get("etag"),
    )
    status, _ = f.call("tests_user_status", 200, LEARNER, id=test_id, user_id=LEARNER)
    st = result_of(status)
    # `S`: submitted (the attempt status letters are upstream's).
    expect(
        dig(st, "attemptsMade") == 1
        and dig(st, "lastAttemptId") == str(attempt_id)
        and dig(st, "lastAttemptStatus") == "S"
        and dig(st, "canResume") is False,
        f"tests_user_status after the submit: {json.dumps(st)[:400]}",
    )

    # A documented error through the same client: its Envelope must parse and validate.
    f.call("tests_get_one", 404, AUTHOR, id=uuid.UUID(NO_SUCH_TEST))
    f.call("tests_get_one", 200, LEARNER, id=test_id)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("base_url")
    p.add_argument("package_dir")
    p.add_argument("openapi_json")
    a = p.parse_args()
    f = Flow(a.base_url, a.package_dir, a.openapi_json)
    flow_error = None
    try:
        run(f)
    except Failure as e:
        flow_error = str(e)
    print(
        f"\n{f.checked} response(s) checked against the document; "
        f"{len(f.loose)} with a bare-object schema (checks nothing)"
    )
    if f.schema_failures:
        print(f"FAILED: {len(f.schema_failures)} schema violation(s):", file=sys.stderr)
        for line in f.schema_failures:
            print(f"  {line}", file=sys.stderr)
    if flow_error:
        print(f"FAILED: learner flow stopped: {flow_error}", file=sys.stderr)
    if flow_error or f.schema_failures:
        sys.exit(1)
    print("learner flow through the generated client: ok")


if __name__ == "__main__":
    main()
