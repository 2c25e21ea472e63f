//! `/file` (issue 18): uploads for `file` questions on the local file store, checked
//! (extension, declared type, content, size, the question's extensions), owned (tenant,
//! organisation, learner), served through signed URLs that expire, and named by `file`
//! answers only when the learner uploaded them.

use assessment_service::clock::ManualClock;
use assessment_service::config::Config;
use http::Method;
use serde_json::{Value, json};

use crate::harness::*;

const LEARNER: &str = "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b";
const OTHER_LEARNER: &str = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF";
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
const F: &str = "/assessment/v1/file";

async fn uploaded(app: &TestApp, user: &'static str) -> String {
    let r = app
        .upload(user, None, "answer.pdf", Some("application/pdf"), PDF)
        .await
        .expect_status(201);
    assert_eq!(r["id"], "api.file.upload");
    assert_eq!(r["result"]["fileSize"], PDF.len());
    r["result"]["file"].as_str().unwrap().to_string()
}

async fn post_as(app: &TestApp, user: &'static str, path: &str, body: Value) -> TestResponse {
    app.call_with(Method::POST, path, Some(body), &as_user(user))
        .await
}

#[tokio::test]
async fn an_upload_is_served_to_its_owner_through_a_signed_url() {
    let clock = ManualClock::starting_now();
    let app = TestApp::on_clock(&clock).await;
    let file = uploaded(&app, LEARNER).await;
    assert!(
        file.starts_with(&format!(
            "assessment/feedback-files/{TENANT}/{ORG}/{LEARNER}/"
        )),
        "{file}"
    );
    let r = post_as(
        &app,
        LEARNER,
        &format!("{F}/download-url"),
        json!({"file": file}),
    )
    .await
    .expect_status(200);
    assert_eq!(r["result"]["expiresIn"], 300);
    let url = r["result"]["downloadUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with("/assessment/v1/file/download?"), "{url}");
    // No credentials but the signature.
    let got = app
        .send(
            http::Request::get(&url)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.body, PDF);
    assert_eq!(got.header("content-type"), Some("application/pdf"));
    assert!(
        got.header("content-disposition")
            .unwrap()
            .starts_with("attachment")
    );
    // A changed signature, or a changed key, is refused; so is the URL once it expires.
    let tampered = url.replace("signature=", "signature=00");
    let r = app
        .send(
            http::Request::get(&tampered)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    clock.advance(chrono::Duration::seconds(301));
    let r = app
        .send(
            http::Request::get(&url)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.errmsg(), "This download link has expired");
}

#[tokio::test]
async fn uploads_are_checked_before_they_are_kept() {
    let app = TestApp::with_config(Config {
        file_max_size_mb: 1,
        ..Config::default()
    })
    .await;
    let bad = |r: TestResponse| {
        r.expect_status(400)["params"]["errmsg"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        bad(app
            .upload(LEARNER, None, "tool.exe", None, b"MZ\x90\0")
            .await),
        "File type not allowed. Allowed extensions: pdf, doc, docx, jpg, jpeg, png, gif, webp, mp4"
    );
    assert_eq!(
        bad(app
            .upload(LEARNER, None, "renamed.pdf", Some("application/pdf"), PNG)
            .await),
        "The file's content is not a .pdf file"
    );
    assert_eq!(
        bad(app
            .upload(LEARNER, None, "a.pdf", Some("image/png"), PDF)
            .await),
        "The file's type (image/png) does not match its extension (.pdf)"
    );
    let big = [PDF, &vec![b'x'; 1024 * 1024]].concat();
    assert_eq!(
        bad(app
            .upload(LEARNER, None, "big.pdf", Some("application/pdf"), &big)
            .await),
        "File size exceeds maximum allowed (1MB)"
    );
    assert_eq!(
        bad(app
            .upload(LEARNER, None, "empty.pdf", Some("application/pdf"), b"")
            .await),
        "No file provided or file too large"
    );
    // A question: it must be a `file` question, and its extensions apply.
    let essay = create_question(&app, json!({"text": "Why?", "type": "essay"})).await;
    let upload_q = create_question(
        &app,
        json!({"text": "Picture", "type": "file", "gradingType": "assessment",
               "params": {"allowedFileExtensions": ["png"]}}),
    )
    .await;
    let (essay, upload_q) = (
        essay["questionId"].as_str(),
        upload_q["questionId"].as_str(),
    );
    assert_eq!(
        bad(app
            .upload(LEARNER, essay, "a.pdf", Some("application/pdf"), PDF)
            .await),
        "This question does not accept file uploads"
    );
    assert_eq!(
        bad(app
            .upload(LEARNER, upload_q, "a.pdf", Some("application/pdf"), PDF)
            .await),
        "This question accepts only: png"
    );
    app.upload(LEARNER, upload_q, "a.png", Some("image/png"), PNG)
        .await
        .expect_status(201);
    assert_eq!(
        bad(app
            .upload(LEARNER, Some("nope"), "a.png", Some("image/png"), PNG)
            .await),
        "Invalid questionId query parameter"
    );
}

#[tokio::test]
async fn files_belong_to_their_learner_and_their_organisation() {
    let app = TestApp::spawn().await;
    let file = uploaded(&app, LEARNER).await;
    // Header mode grants every role: for another learner's view, use a JWT app below. Here,
    // another tenant and a made-up reference see nothing.
    let other_tenant = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", USER),
    ];
    let r = app
        .call_with(
            Method::POST,
            &format!("{F}/download-url"),
            Some(json!({"file": file})),
            &other_tenant,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = post_as(
        &app,
        LEARNER,
        &format!("{F}/delete"),
        json!({"file": "../../etc/passwd"}),
    )
    .await;
    assert_eq!(r.status, 400);
    let r = post_as(&app, LEARNER, &format!("{F}/delete"), json!({"file": file})).await;
    assert_eq!(
        r.expect_status(200)["result"]["message"],
        "File deleted successfully"
    );
    let r = post_as(
        &app,
        LEARNER,
        &format!("{F}/download-url"),
        json!({"file": file}),
    )
    .await;
    assert_eq!(r.status, 404, "gone");
}

#[tokio::test]
async fn a_file_answer_must_name_the_learners_own_upload() {
    let app = TestApp::spawn().await;
    let (test, qs) = published_test(
        &app,
        json!({"gradingType": "assessment"}),
        vec![json!({"text": "Upload", "type": "file", "marks": 1})],
    )
    .await;
    let q = qs[0]["questionId"].clone();
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let theirs = uploaded(&app, OTHER_LEARNER).await;
    for file in ["https://files.example.org/a.pdf".to_string(), theirs] {
        let r = answer(
            &app,
            &attempt,
            LEARNER,
            json!([{"questionId": q, "answer": {"file": file}}]),
            400,
        )
        .await;
        assert_eq!(
            r["params"]["errmsg"],
            "answers[0]: file must name a file you uploaded (the `file` of POST /file/upload)"
        );
    }
    let mine = uploaded(&app, LEARNER).await;
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": q, "answer": {"file": mine}}]),
        201,
    )
    .await;
}

/// With tokens, a learner's files are theirs: another learner gets 404, a reviewer of the
/// organisation may read and remove them.
#[tokio::test]
async fn with_tokens_only_the_owner_or_a_reviewer_reaches_a_file() {
    use jsonwebtoken::{EncodingKey, Header, encode};
    let secret = "a-test-secret-that-is-long-enough-for-hs256";
    let app = TestApp::with_config(Config {
        jwt_secret: Some(secret.into()),
        ..Config::default()
    })
    .await;
    let token = |user: &str, role: &str| {
        let t = encode(
            &Header::default(),
            &json!({"sub": user, "tenantId": TENANT, "organisationId": ORG, "roles": [role],
                    "exp": chrono::Utc::now().timestamp() + 600}),
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        format!("Bearer {t}")
    };
    let (owner, other, reviewer) = (
        token(LEARNER, "learner"),
        token(OTHER_LEARNER, "learner"),
        token(USER, "reviewer"),
    );
    let headers = |auth: &str| vec![("authorization", auth.to_string())];
    let r = app
        .upload_with(
            &[("authorization", owner.as_str())],
            None,
            "a.pdf",
            Some("application/pdf"),
            PDF,
        )
        .await
        .expect_status(201);
    let file = json!({"file": r["result"]["file"]});
    let call = |auth: &str, route: &str| {
        let (app, h, body) = (&app, headers(auth), file.clone());
        let path = format!("{F}/{route}");
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call_with(Method::POST, &path, Some(body), &h).await
        }
    };
    assert_eq!(call(&other, "download-url").await.status, 404);
    assert_eq!(call(&other, "delete").await.status, 404);
    assert_eq!(call(&owner, "download-url").await.status, 200);
    assert_eq!(call(&reviewer, "download-url").await.status, 200);
    assert_eq!(call(&reviewer, "delete").await.status, 200);
}

/// Malformed requests to the file routes get 4xx answers in the envelope.
#[tokio::test]
async fn malformed_file_requests_get_enveloped_4xx() {
    let app = TestApp::spawn().await;
    let r = app
        .raw(
            Method::POST,
            &format!("{F}/upload"),
            "application/json",
            "{}",
        )
        .await;
    assert_failure(
        &r,
        415,
        "api.file.create",
        "UNSUPPORTED_MEDIA_TYPE",
        "CLIENT_ERROR",
        "The body must be multipart/form-data with a file",
    );
    for path in [
        format!("{F}/download"),
        format!("{F}/download?key=x&expires=soon&signature=00"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.json()["params"]["errmsg"].is_string(), "{}", r.text());
    }
    let r = app
        .get(&format!("{F}/download?key=x&expires=1&signature=00"))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
}
