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
    CatchResultExt, CaughtError, Context, Function, Module, Persistent, Runtime, Value,
};
use serde_json::Value as Json;

use super::{External, Hook, HookFuture, Plugin, Verdict};

mod shape;
use crate::config::ConfigError;
use shape::{describe, plugin_object, read_meta, verdict};

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

#[cfg(test)]
mod tests;
