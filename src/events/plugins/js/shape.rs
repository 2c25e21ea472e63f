//! A plugin module's shape: its export, the seed's plugin fields and hooks, its
//! `externalService`, what a hook returns, and errors as one line.

use rquickjs::{CatchResultExt, CaughtError, Ctx, Function, Object, Value};
use serde_json::Value as Json;

use super::Meta;
use crate::events::brokers::BrokerSpec;
use crate::events::plugins::{External, Hook, Verdict};
use crate::events::subscriptions::Source;

/// The plugin a module exports: its default export, else its only export; an object, or a
/// class (instantiated with no arguments).
pub(super) fn plugin_object<'js>(
    ctx: &Ctx<'js>,
    exports: &Object<'js>,
) -> Result<Object<'js>, String> {
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
pub(super) fn read_meta<'js>(
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
    let mut headers = w.sent_headers();
    headers.extend(crate::events::subscriptions::service_name_header());
    let events = w.events.clone().or_else(|| s.events.clone());
    Ok((
        Some(External::Webhook {
            url: w.url.clone(),
            method: w.http_method(),
            headers,
            timeout_ms: timeout as i32,
            events,
        }),
        Some(retries as i32),
    ))
}

/// What a hook's return value means.
pub(super) fn verdict<'js>(ctx: &Ctx<'js>, v: Value<'js>) -> Result<Verdict, String> {
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
pub(super) fn describe(e: &CaughtError<'_>) -> String {
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
