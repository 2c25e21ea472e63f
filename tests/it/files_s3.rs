//! `/file` on S3-compatible storage (issue 18): the same routes against a real S3 API, moto's
//! server mode (PyPI `moto[server]`), started by each test on a loopback port. The first test
//! to need moto installs it into a virtual environment under /var/tmp (one at a time, under a
//! file lock), so `cargo nextest run` needs nothing installed beforehand but Python.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use assessment_service::config::Config;
use assessment_service::config::storage::CloudStorage;
use http::Method;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::json;

use crate::harness::*;

const LEARNER: &str = "1f2e3d4c-5b6a-4978-8a6b-5c4d3e2f1a0b";
const PDF: &[u8] = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF";
const F: &str = "/assessment/v1/file";
const BUCKET: &str = "learner-files";
const MOTO_VERSION: &str = "5.2.5";
const VENV: &str = "/var/tmp/assessment-moto-venv";

/// The `moto_server` program, installed on first use.
fn moto_program() -> PathBuf {
    let venv = Path::new(VENV);
    let program = venv.join("bin/moto_server");
    let marker = venv.join(format!(".installed-moto-{MOTO_VERSION}"));
    if marker.exists() {
        return program;
    }
    let lock = std::fs::File::create(format!("{VENV}.lock")).expect("create the install lock");
    lock.lock().expect("take the install lock");
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(venv);
        let run = |cmd: &mut Command| {
            let out = cmd.output().expect("run the installer");
            assert!(
                out.status.success(),
                "{cmd:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("python3").args(["-m", "venv", VENV]));
        run(Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("moto[server]=={MOTO_VERSION}"),
        ]));
        std::fs::File::create(&marker)
            .and_then(|mut f| f.write_all(b"ok\n"))
            .expect("mark the install done");
    }
    program
}

/// A moto server on 127.0.0.1, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts moto and creates [`BUCKET`] in it.
    async fn start() -> Moto {
        let program = tokio::task::spawn_blocking(moto_program).await.unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = http
                .get(format!("{}/moto-api/", moto.endpoint))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "moto did not start in 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = http
            .put(format!("{}/{BUCKET}", moto.endpoint))
            .send()
            .await
            .unwrap();
        assert!(created.status().is_success(), "create the bucket");
        moto
    }

    fn storage(&self, bucket: &str) -> CloudStorage {
        storage_at(&self.endpoint, bucket)
    }

    /// A client of the bucket of the test's own, to see what the service left in it.
    fn bucket(&self) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_bucket_name(BUCKET)
                .with_region("us-east-1")
                .with_access_key_id("testing")
                .with_secret_access_key("testing")
                .build()
                .unwrap(),
        )
    }
}

/// `POST /file/{route}` with `{file}` as the learner.
async fn post_file(app: &TestApp, route: &str, file: &str) -> TestResponse {
    app.call_with(
        Method::POST,
        &format!("{F}/{route}"),
        Some(json!({"file": file})),
        &as_user(LEARNER),
    )
    .await
}

fn storage_at(endpoint: &str, bucket: &str) -> CloudStorage {
    CloudStorage {
        bucket: Some(bucket.into()),
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        endpoint: Some(endpoint.into()),
        ..CloudStorage::default()
    }
}

fn on_s3(storage: CloudStorage) -> Config {
    Config {
        cloud_storage: storage,
        // Nothing may land in the local folder.
        storage_local_path: PathBuf::from("/nonexistent/assessment-files"),
        ..Config::default()
    }
}

#[tokio::test]
async fn on_s3_uploads_are_kept_in_the_bucket_and_served_by_presigned_urls() {
    let moto = Moto::start().await;
    let app = TestApp::with_config(on_s3(moto.storage(BUCKET))).await;
    let r = app
        .upload(LEARNER, None, "answer.pdf", Some("application/pdf"), PDF)
        .await
        .expect_status(201);
    assert_eq!(r["result"]["fileSize"], PDF.len());
    let file = r["result"]["file"].as_str().unwrap().to_string();
    assert!(
        file.starts_with(&format!(
            "assessment/feedback-files/{TENANT}/{ORG}/{LEARNER}/"
        )),
        "{file}"
    );
    // In the bucket, under that key, with its type.
    let bucket = moto.bucket();
    let kept = bucket.get(&ObjectPath::from(file.as_str())).await.unwrap();
    assert_eq!(
        kept.attributes
            .get(&object_store::Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("application/pdf")
    );
    assert_eq!(kept.bytes().await.unwrap().as_ref(), PDF);

    // The download URL is the bucket's presigned URL: no credentials but its signature.
    let r = post_file(&app, "download-url", &file)
        .await
        .expect_status(200);
    assert_eq!(r["result"]["expiresIn"], 300);
    let url = r["result"]["downloadUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/{BUCKET}/", moto.endpoint)),
        "{url}"
    );
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let got = reqwest::get(url).await.unwrap();
    assert_eq!(got.status(), 200);
    assert!(
        got.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), PDF);
    // Without the signature, the bucket refuses.
    let unsigned = url.split('?').next().unwrap();
    assert_eq!(reqwest::get(unsigned).await.unwrap().status(), 403);

    // Another tenant sees nothing of it.
    let other_tenant = [
        ("tenantid", OTHER_TENANT),
        ("organisationid", ORG),
        ("userid", LEARNER),
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

    // A `file` answer may name it, since it is in the bucket.
    let (test, qs) = published_test(
        &app,
        json!({"gradingType": "assessment"}),
        vec![json!({"text": "Upload", "type": "file", "marks": 1})],
    )
    .await;
    let attempt = start_attempt(&app, &test, LEARNER).await;
    let q = qs[0]["questionId"].clone();
    answer(
        &app,
        &attempt,
        LEARNER,
        json!([{"questionId": q, "answer": {"file": file}}]),
        201,
    )
    .await;

    // Deleted: gone from the bucket, and no longer answerable or downloadable.
    let r = post_file(&app, "delete", &file).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gone = bucket.head(&ObjectPath::from(file.as_str())).await;
    assert!(
        matches!(gone, Err(object_store::Error::NotFound { .. })),
        "{gone:?}"
    );
    let r = post_file(&app, "download-url", &file).await;
    assert_eq!(r.status, 404);
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

/// A bucket that is missing or a store that does not answer is the service's trouble, not the
/// learner's: 503 in the envelope, within seconds, never a 404 or a 500.
#[tokio::test]
async fn on_s3_a_missing_bucket_or_an_unreachable_store_is_a_503() {
    let moto = Moto::start().await;
    let app = TestApp::with_config(on_s3(moto.storage("no-such-bucket"))).await;
    let r = app
        .upload(LEARNER, None, "a.pdf", Some("application/pdf"), PDF)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.errmsg(), "The file storage is unavailable");

    let closed = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let app = TestApp::with_config(on_s3(storage_at(
        &format!("http://127.0.0.1:{closed}"),
        BUCKET,
    )))
    .await;
    let began = Instant::now();
    let r = app
        .upload(LEARNER, None, "a.pdf", Some("application/pdf"), PDF)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "{:?}",
        began.elapsed()
    );
}
