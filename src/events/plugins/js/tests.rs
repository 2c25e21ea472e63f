//! Loading errors, the sandbox, and what a hook's return value means.
use super::*;
use serde_json::json;

fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, source) in files {
        std::fs::write(d.path().join(name), source).unwrap();
    }
    d
}

fn load_err(files: &[(&str, &str)]) -> String {
    let d = dir(files);
    let e = load_dir(d.path(), Limits::default()).unwrap_err();
    assert_eq!(e.var, "CUSTOM_PLUGINS_DIR");
    assert_eq!(e.message.lines().count(), 1, "{}", e.message);
    e.message
}

#[test]
fn start_up_errors_name_the_file_and_line() {
    let m = load_err(&[(
        "broken.js",
        "export default {\n  id: 'x',\n  hooks: [ { name: 'test.created' handler: () => {} } ],\n};",
    )]);
    assert!(m.contains("broken.js") && m.contains(":3"), "{m}");
    let m = load_err(&[("anon.js", "export default { name: 'no id', hooks: [] };")]);
    assert!(m.contains("anon.js") && m.contains("no id"), "{m}");
    let twice = "export default { id: 'same', hooks: [{ name: '*', handler: () => {} }] };";
    let m = load_err(&[("a.js", twice), ("b.js", twice)]);
    assert!(
        m.contains("b.js") && m.contains("\"same\"") && m.contains("a.js"),
        "{m}"
    );
    let m = load_err(&[(
        "bad-hook.js",
        "export default { id: 'h', hooks: [{ name: 'test.creatd', handler: () => {} }] };",
    )]);
    assert!(m.contains("test.creatd"), "{m}");
    let m = load_err(&[(
        "imports.js",
        "import * as std from 'std';\nexport default {};",
    )]);
    assert!(m.contains("imports.js"), "{m}");
}

#[tokio::test]
async fn the_sandbox_has_no_host_and_a_frozen_clock() {
    let d = dir(&[(
        "probe.js",
        r#"export default { id: 'probe', hooks: [{ name: '*', handler: (e) => ({
            now: Date.now(), iso: new Date().toISOString(), parsed: new Date(0).getTime(),
            host: [typeof require, typeof process, typeof fetch, typeof setTimeout,
                   typeof XMLHttpRequest, typeof std, typeof os, typeof console.log],
        }) }] };"#,
    )]);
    let plugins = load_dir(d.path(), Limits::default()).unwrap();
    let event = json!({"name": "test.created", "timestamp": "2026-01-02T03:04:05.678Z",
        "context": {}, "data": {}, "id": "e"});
    let Verdict::Replace(v) = plugins[0].run(0, &event).await.unwrap() else {
        panic!("an object comes back as the payload");
    };
    assert_eq!(v["iso"], "2026-01-02T03:04:05.678Z");
    assert_eq!(v["now"], 1767323045678i64);
    assert_eq!(v["parsed"], 0);
    assert_eq!(
        v["host"],
        json!([
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "undefined",
            "function"
        ])
    );
}

#[tokio::test]
async fn what_a_hook_returns_decides() {
    let d = dir(&[(
        "returns.js",
        r#"export default { id: 'returns', hooks: [
            { name: '*', handler: (e) => e.data.give === 'nothing' ? undefined
                : e.data.give === 'false' ? false
                : e.data.give === 'object' ? { replaced: true }
                : e.data.give === 'promise' ? Promise.resolve({ later: 1 })
                : e.data.give === 'never' ? new Promise(() => {})
                : 42 }] };"#,
    )]);
    let p = &load_dir(d.path(), Limits::default()).unwrap()[0];
    let run = |give: &str| {
        let e = json!({"name": "test.created", "data": {"give": give}});
        async move { p.run(0, &e).await }
    };
    assert_eq!(run("nothing").await, Ok(Verdict::Keep));
    assert_eq!(run("false").await, Ok(Verdict::Cancel));
    assert_eq!(
        run("object").await,
        Ok(Verdict::Replace(json!({"replaced": true})))
    );
    assert_eq!(
        run("promise").await,
        Ok(Verdict::Replace(json!({"later": 1})))
    );
    assert!(run("never").await.unwrap_err().contains("never settles"));
    assert!(run("number").await.unwrap_err().contains("returns nothing"));
}
