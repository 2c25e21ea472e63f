//! Custom plugins: JavaScript modules in the seed's plugin shape, loaded from
//! `CUSTOM_PLUGINS_DIR` at start-up and run in QuickJS (through `rquickjs`).
//!
//! Each plugin gets its own QuickJS runtime on its own thread, so a hook never runs on the
//! async runtime's workers: a slow or stuck hook holds only its plugin's thread, never an API
//! request or another plugin's delivery. The runtime has a memory limit
//! (`CUSTOM_PLUGIN_MEMORY_MB`), and every call a time limit (`CUSTOM_PLUGIN_TIMEOUT_MS`)
//! enforced by QuickJS's interrupt handler, which also stops an endless loop. After a call
//! that ran out of time or memory the runtime is thrown away and the module loaded again.
//!
//! The sandbox is QuickJS's bare language: no file system, network, process, environment,
//! timers or module imports. `Date` is frozen at the event's `timestamp` (the only clock a hook
//! sees); `console.log/info/warn/error` go to the service's log with the plugin's id.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rquickjs::{
    CatchResultExt, CaughtError, Context, Ctx, Function, Module, Object, Persistent, Runtime, Value,
};
use serde_json::Value as Json;

use super::{External, Hook, HookFuture, Plugin, Verdict};
use crate::config::ConfigError;
use crate::events::brokers::BrokerSpec;
use crate::events::subscriptions::Source;
use crate::secret::Secret;

/// A call's and a plugin's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Each hook call (and loading the module).
    pub timeout: Duration,
    /// Each plugin's QuickJS heap.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_millis(100),
            memory_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What a plugin module declares (the seed's `Plugin` interface).
#[derive(Debug, Clone)]
struct Meta {
    id: String,
    name: String,
    version: String,
    description: String,
    author: String,
    plugin_type: String,
    is_active: bool,
    hooks: Vec<Hook>,
    external: Option<External>,
    retries: Option<i32>,
}

/// A call to a plugin's thread: hook number, the event as JSON, where to answer.
struct Call {
    hook: usize,
    event: String,
    reply: tokio::sync::oneshot::Sender<Result<Verdict, String>>,
}

/// A loaded custom plugin: its declaration, and the channel to the thread that runs it.
pub struct JsPlugin {
    meta: Meta,
    file: PathBuf,
    calls: std::sync::mpsc::SyncSender<Call>,
    limits: Limits,
}

impl std::fmt::Debug for JsPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsPlugin({} from {})", self.meta.id, self.file.display())
    }
}

/// Calls waiting for a plugin's thread beyond this are refused (the try fails and is retried).
const QUEUE: usize = 256;

/// Loads every `*.js` file of `dir` (in name order). A file that does not load, a plugin
/// without an `id`, or an id used twice is a [`ConfigError`] naming the file.
pub fn load_dir(dir: &Path, limits: Limits) -> Result<Vec<JsPlugin>, ConfigError> {
    let fail = |m: String| ConfigError::new("CUSTOM_PLUGINS_DIR", m);
    let entries = std::fs::read_dir(dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "js") && p.is_file())
        .collect();
    files.sort();
    let mut plugins: Vec<JsPlugin> = Vec::new();
    for file in files {
        let plugin =
            JsPlugin::load(&file, limits).map_err(|e| fail(format!("{}: {e}", file.display())))?;
        if let Some(other) = plugins.iter().find(|p| p.meta.id == plugin.meta.id) {
            return Err(fail(format!(
                "{}: the id {:?} is already used by {}",
                file.display(),
                plugin.meta.id,
                other.file.display()
            )));
        }
        plugins.push(plugin);
    }
    Ok(plugins)
}

impl JsPlugin {
    /// Loads one module on a new thread, which then serves the plugin's calls.
    pub fn load(file: &Path, limits: Limits) -> Result<JsPlugin, String> {
        let source = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
        let (calls, receive) = std::sync::mpsc::sync_channel::<Call>(QUEUE);
        let (ready, loaded) = std::sync::mpsc::channel::<Result<Meta, String>>();
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let thread_name = format!("js-plugin-{name}");
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || serve(&name, &source, limits, ready, receive))
            .map_err(|e| format!("starting its thread: {e}"))?;
        let meta = loaded
            .recv()
            .map_err(|_| "its thread stopped while loading".to_string())??;
        Ok(JsPlugin {
            meta,
            file: file.to_path_buf(),
            calls,
            limits,
        })
    }

    pub fn is_active(&self) -> bool {
        self.meta.is_active
    }
}

impl Plugin for JsPlugin {
    fn id(&self) -> &str {
        &self.meta.id
    }
    fn name(&self) -> &str {
        &self.meta.name
    }
    fn version(&self) -> &str {
        &self.meta.version
    }
    fn description(&self) -> &str {
        &self.meta.description
    }
    fn author(&self) -> &str {
        &self.meta.author
    }
    fn plugin_type(&self) -> &str {
        &self.meta.plugin_type
    }
    fn hooks(&self) -> Vec<Hook> {
        self.meta.hooks.clone()
    }
    fn external(&self) -> Option<&External> {
        self.meta.external.as_ref()
    }
    fn max_retries(&self) -> i32 {
        self.meta.retries.unwrap_or(3)
    }
    fn file(&self) -> Option<&Path> {
        Some(&self.file)
    }

    fn run<'a>(&'a self, hook: usize, event: &'a Json) -> HookFuture<'a> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let call = Call {
                hook,
                event: event.to_string(),
                reply,
            };
            self.calls.try_send(call).map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full(_) => {
                    format!("plugin {} is busy ({QUEUE} calls waiting)", self.meta.id)
                }
                std::sync::mpsc::TrySendError::Disconnected(_) => {
                    format!("plugin {} stopped", self.meta.id)
                }
            })?;
            // The thread enforces the limit; this bound only guards against a lost answer.
            match tokio::time::timeout(self.limits.timeout * 4 + Duration::from_secs(5), answer)
                .await
            {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(format!("plugin {} stopped", self.meta.id)),
                Err(_) => Err(format!("plugin {} did not answer", self.meta.id)),
            }
        })
    }
}

/// The plugin's thread: loads the module (answering `ready`), then serves calls until the
/// plugin is dropped. A call that ran out of time or memory gets a fresh runtime.
fn serve(
    file: &str,
    source: &str,
    limits: Limits,
    ready: std::sync::mpsc::Sender<Result<Meta, String>>,
    calls: std::sync::mpsc::Receiver<Call>,
) {
    let mut host = match Host::load(file, source, limits) {
        Ok(h) => {
            let _ = ready.send(Ok(h.meta.clone()));
            h
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    drop(ready);
    while let Ok(call) = calls.recv() {
        let (result, spoiled) = host.call(call.hook, &call.event);
        let _ = call.reply.send(result);
        if spoiled {
            match Host::load(file, source, limits) {
                Ok(h) => host = h,
                Err(e) => {
                    tracing::error!(plugin = %host.meta.id, error = %e, "reloading the plugin failed");
                }
            }
        }
    }
}

/// A loaded module in its own runtime.
struct Host {
    meta: Meta,
    // Dropped before the runtime (field order).
    handlers: Vec<Persistent<Function<'static>>>,
    set_now: Persistent<Function<'static>>,
    context: Context,
    _runtime: Runtime,
    /// Milliseconds since `epoch` after which the running code is interrupted (0: none).
    deadline: Arc<AtomicU64>,
    epoch: Instant,
    limits: Limits,
}

/// Defines `console` and freezes `Date`; returns the function that sets the frozen time.
const PRELUDE: &str = r#"(() => {
  const write = globalThis.__pluginLog;
  delete globalThis.__pluginLog;
  const text = (args) => args.map((a) => {
    if (typeof a === 'string') return a;
    try { const s = JSON.stringify(a); return s === undefined ? String(a) : s; } catch (e) { return String(a); }
  }).join(' ');
  globalThis.console = {
    log: (...a) => write(0, text(a)), info: (...a) => write(0, text(a)),
    debug: (...a) => write(0, text(a)), warn: (...a) => write(1, text(a)),
    error: (...a) => write(2, text(a)),
  };
  let now = 0;
  const RealDate = Date;
  class SandboxDate extends RealDate {
    constructor(...a) { if (a.length === 0) { super(now); } else { super(...a); } }
    static now() { return now; }
  }
  globalThis.Date = SandboxDate;
  return (ms) => { now = ms; };
})()"#;

impl Host {
    fn load(file: &str, source: &str, limits: Limits) -> Result<Host, String> {
        let runtime = Runtime::new().map_err(|e| e.to_string())?;
        runtime.set_memory_limit(limits.memory_bytes);
        runtime.set_max_stack_size(512 * 1024);
        let deadline = Arc::new(AtomicU64::new(0));
        let epoch = Instant::now();
        {
            let deadline = deadline.clone();
            runtime.set_interrupt_handler(Some(Box::new(move || {
                let d = deadline.load(Ordering::Relaxed);
                d != 0 && epoch.elapsed().as_millis() as u64 > d
            })));
        }
        let context = Context::full(&runtime).map_err(|e| e.to_string())?;
        let arm = |d: &AtomicU64, t: Duration| {
            d.store(
                (epoch.elapsed() + t).as_millis() as u64 + 1,
                Ordering::Relaxed,
            );
        };
        // Loading (the module's top-level code) gets ten calls' time.
        arm(&deadline, limits.timeout * 10);
        let loaded = context.with(|ctx| -> Result<_, String> {
            let log_id = std::sync::Arc::new(std::sync::Mutex::new(file.to_string()));
            let for_log = log_id.clone();
            let write = Function::new(ctx.clone(), move |level: i32, text: String| {
                let id = for_log.lock().map(|s| s.clone()).unwrap_or_default();
                match level {
                    2 => tracing::error!(target: "plugins", plugin = %id, "{text}"),
                    1 => tracing::warn!(target: "plugins", plugin = %id, "{text}"),
                    _ => tracing::info!(target: "plugins", plugin = %id, "{text}"),
                }
            })
            .map_err(|e| e.to_string())?;
            ctx.globals()
                .set("__pluginLog", write)
                .map_err(|e| e.to_string())?;
            let set_now: Function<'_> = ctx.eval(PRELUDE).catch(&ctx).map_err(|e| describe(&e))?;
            let module = Module::declare(ctx.clone(), file, source)
                .catch(&ctx)
                .map_err(|e| describe(&e))?;
            let (module, promise) = module.eval().catch(&ctx).map_err(|e| describe(&e))?;
            promise
                .finish::<()>()
                .catch(&ctx)
                .map_err(|e| describe(&e))?;
            let exports = module.namespace().map_err(|e| e.to_string())?;
            let plugin = plugin_object(&ctx, &exports)?;
            let (meta, handlers) = read_meta(&ctx, &plugin)?;
            if let Ok(mut id) = log_id.lock() {
                *id = meta.id.clone();
            }
            let handlers = handlers
                .into_iter()
                .map(|h| Persistent::save(&ctx, h))
                .collect::<Vec<_>>();
            Ok((meta, handlers, Persistent::save(&ctx, set_now)))
        });
        deadline.store(0, Ordering::Relaxed);
        let (meta, handlers, set_now) = loaded?;
        Ok(Host {
            meta,
            handlers,
            set_now,
            context,
            _runtime: runtime,
            deadline,
            epoch,
            limits,
        })
    }

    /// Runs one hook on an event (JSON text). Returns the verdict, and whether the runtime is
    /// spoiled (it ran out of time or memory, and should be replaced).
    fn call(&self, hook: usize, event: &str) -> (Result<Verdict, String>, bool) {
        let Some(handler) = self.handlers.get(hook).cloned() else {
            return (Err(format!("no hook number {hook}")), false);
        };
        let now_ms = serde_json::from_str::<Json>(event)
            .ok()
            .and_then(|e| {
                e["timestamp"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            })
            .map_or(0, |t| t.timestamp_millis());
        let set_now = self.set_now.clone();
        self.deadline.store(
            (self.epoch.elapsed() + self.limits.timeout).as_millis() as u64 + 1,
            Ordering::Relaxed,
        );
        let started = Instant::now();
        let result = self.context.with(|ctx| -> Result<Verdict, String> {
            let set_now = set_now.restore(&ctx).map_err(|e| e.to_string())?;
            set_now
                .call::<_, ()>((now_ms as f64,))
                .map_err(|e| e.to_string())?;
            let handler = handler.restore(&ctx).map_err(|e| e.to_string())?;
            let arg: Value<'_> = ctx.json_parse(event).map_err(|e| e.to_string())?;
            let returned: Value<'_> = handler.call((arg,)).catch(&ctx).map_err(|e| describe(&e))?;
            let settled: Value<'_> = match returned.as_promise() {
                Some(p) => p.finish::<Value<'_>>().catch(&ctx).map_err(|e| match e {
                    CaughtError::Error(rquickjs::Error::WouldBlock) => {
                        "the hook's promise never settles (there are no timers)".to_string()
                    }
                    other => describe(&other),
                })?,
                None => returned,
            };
            verdict(&ctx, settled)
        });
        self.deadline.store(0, Ordering::Relaxed);
        let elapsed = started.elapsed();
        match result {
            Ok(v) => (Ok(v), false),
            Err(e) => {
                let out_of_time = elapsed >= self.limits.timeout;
                let out_of_memory = e.contains("out of memory") || e.contains("Allocation");
                let message = if out_of_time {
                    format!(
                        "the hook ran past its {} ms limit ({e})",
                        self.limits.timeout.as_millis()
                    )
                } else if out_of_memory {
                    format!(
                        "the hook ran out of memory ({} MiB limit): {e}",
                        self.limits.memory_bytes / (1024 * 1024)
                    )
                } else {
                    e
                };
                (Err(message), out_of_time || out_of_memory)
            }
        }
    }
}

/// The plugin a module exports: its default export, else its only export; an object, or a
/// class (instantiated with no arguments).
fn plugin_object<'js>(ctx: &Ctx<'js>, exports: &Object<'js>) -> Result<Object<'js>, String> {
    let mut value: Value<'js> = exports.get("default").map_err(|e| e.to_string())?;
    if value.is_undefined() {
        let keys: Vec<String> = exports.keys::<String>().filter_map(Result::ok).collect();
        let [only] = keys.as_slice() else {
            return Err(format!(
                "the module must export its plugin as default (or as its only export); it exports {keys:?}"
            ));
        };
        value = exports.get(only.as_str()).map_err(|e| e.to_string())?;
    }
    if value.is_constructor() {
        let ctor = rquickjs::function::Constructor::from_value(value).map_err(|e| e.to_string())?;
        return ctor
            .construct::<_, Object<'js>>(())
            .catch(ctx)
            .map_err(|e| format!("constructing the plugin: {}", describe(&e)));
    }
    Object::from_value(value).map_err(|_| "the export is not an object or a class".to_string())
}

/// Reads the seed's plugin fields and the hooks' handlers.
fn read_meta<'js>(
    ctx: &Ctx<'js>,
    plugin: &Object<'js>,
) -> Result<(Meta, Vec<Function<'js>>), String> {
    let text = |key: &str| -> Result<Option<String>, String> {
        let v: Value<'js> = plugin.get(key).map_err(|e| e.to_string())?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        v.as_string()
            .map(|s| s.to_string().map_err(|e| e.to_string()))
            .transpose()?
            .map(Some)
            .ok_or_else(|| format!("{key} must be a string"))
    };
    let id = text("id")?
        .filter(|s| !s.trim().is_empty())
        .ok_or("the plugin has no id")?;
    let is_active = match plugin
        .get::<_, Value<'js>>("isActive")
        .map_err(|e| e.to_string())?
    {
        v if v.is_undefined() => true,
        v => v.as_bool().ok_or("isActive must be true or false")?,
    };
    let plugin_type = text("type")?.unwrap_or_else(|| "internal".into());
    if !matches!(plugin_type.as_str(), "internal" | "external") {
        return Err(format!("type {plugin_type:?} is not internal or external"));
    }
    let mut hooks = Vec::new();
    let mut handlers = Vec::new();
    let list: Value<'js> = plugin.get("hooks").map_err(|e| e.to_string())?;
    if !list.is_undefined() && !list.is_null() {
        let list = list
            .as_array()
            .ok_or("hooks must be an array of {name, handler, priority}")?;
        for (i, h) in list.iter::<Object<'js>>().enumerate() {
            let h = h.map_err(|_| format!("hooks[{i}] is not an object"))?;
            let name: String = h
                .get("name")
                .map_err(|_| format!("hooks[{i}].name must be an event name or *"))?;
            if name != "*" && crate::domain::event::EventName::parse(&name).is_none() {
                return Err(format!("hooks[{i}].name {name:?} is not an event name"));
            }
            let handler: Function<'js> = h
                .get("handler")
                .map_err(|_| format!("hooks[{i}].handler must be a function"))?;
            let priority: Value<'js> = h.get("priority").map_err(|e| e.to_string())?;
            let priority = if priority.is_undefined() {
                0
            } else {
                priority
                    .as_number()
                    .filter(|p| p.fract() == 0.0 && p.abs() < 1e9)
                    .ok_or_else(|| format!("hooks[{i}].priority must be a whole number"))?
                    as i32
            };
            hooks.push(Hook {
                event: name,
                priority,
            });
            handlers.push(handler);
        }
    }
    let service: Value<'js> = plugin.get("externalService").map_err(|e| e.to_string())?;
    let (external, retries) = if service.is_undefined() || service.is_null() {
        (None, None)
    } else {
        let json = ctx
            .json_stringify(service)
            .map_err(|e| e.to_string())?
            .map(|s| s.to_string())
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        let parsed: Json = serde_json::from_str(&json).map_err(|e| e.to_string())?;
        external_service(&id, &parsed)?
    };
    if hooks.is_empty() && external.is_none() {
        return Err("the plugin has neither hooks nor an externalService".into());
    }
    Ok((
        Meta {
            name: text("name")?.unwrap_or_else(|| id.clone()),
            version: text("version")?.unwrap_or_default(),
            description: text("description")?.unwrap_or_default(),
            author: text("author")?.unwrap_or_default(),
            id,
            plugin_type,
            is_active,
            hooks,
            external,
            retries,
        },
        handlers,
    ))
}

/// The plugin's `externalService`, in the plugins file's shape (checked the same way).
fn external_service(id: &str, v: &Json) -> Result<(Option<External>, Option<i32>), String> {
    let doc = serde_json::json!({"id": id, "name": id, "type": "external", "externalService": v});
    let plugin: crate::events::subscriptions::FilePlugin =
        serde_json::from_value(doc).map_err(|e| format!("externalService: {e}"))?;
    let s = &plugin.external_service;
    if let Some(spec) = plugin.broker()? {
        let spec = BrokerSpec {
            // Its route in the sinks is the plugin's own subscription.
            source: Source::Builtin,
            ..spec
        };
        let retries = Some(spec.max_retries);
        return Ok((Some(External::Broker(spec)), retries));
    }
    let w = s
        .webhook
        .as_ref()
        .ok_or("externalService.webhook is missing")?;
    let url = url::Url::parse(&w.url).map_err(|e| format!("externalService.webhook.url: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("externalService.webhook.url must be http(s)".into());
    }
    crate::events::subscriptions::check_headers(&w.headers)
        .map_err(|e| format!("externalService.webhook.{e}"))?;
    let timeout = w.timeout.or(s.timeout).unwrap_or(10_000);
    let retries = w.retries.or(s.retries).unwrap_or(3);
    if !(1..=300_000).contains(&timeout) || retries > 100 {
        return Err("timeout must be 1..300000 ms and retries at most 100".into());
    }
    let mut headers: std::collections::BTreeMap<String, Secret> = w
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    headers.insert("X-Service-Name".into(), Secret::from("shiksha-assessment"));
    let events = w.events.clone().or_else(|| s.events.clone());
    Ok((
        Some(External::Webhook {
            url: w.url.clone(),
            method: w
                .method
                .clone()
                .unwrap_or_else(|| "POST".into())
                .to_ascii_uppercase(),
            headers,
            timeout_ms: timeout as i32,
            events,
        }),
        Some(retries as i32),
    ))
}

/// What a hook's return value means.
fn verdict<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> Result<Verdict, String> {
    if v.is_undefined() || v.is_null() || v.as_bool() == Some(true) {
        return Ok(Verdict::Keep);
    }
    if v.as_bool() == Some(false) {
        return Ok(Verdict::Cancel);
    }
    if v.is_object() && !v.is_function() && !v.is_array() {
        let text = ctx
            .json_stringify(v)
            .map_err(|e| e.to_string())?
            .map(|s| s.to_string())
            .transpose()
            .map_err(|e| e.to_string())?
            .unwrap_or_default();
        return serde_json::from_str(&text)
            .map(Verdict::Replace)
            .map_err(|e| format!("the returned object is not JSON: {e}"));
    }
    Err("a hook returns nothing (keep the event), an object (the payload to deliver) or false (cancel this plugin's delivery)".into())
}

/// An error as one line: the thrown value's message, and where the engine says it was.
fn describe(e: &CaughtError<'_>) -> String {
    match e {
        CaughtError::Exception(ex) => {
            let message = ex.message().unwrap_or_else(|| "exception".into());
            let at = ex.stack().and_then(|s| {
                s.lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("at "))
                    .map(|l| l.trim_start_matches("at ").to_string())
            });
            match at {
                Some(at) => format!("{message} (at {at})"),
                None => message,
            }
        }
        CaughtError::Value(v) => format!("threw {v:?}"),
        CaughtError::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
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
}
