//! The documentation page at `/api-docs`: Swagger UI over `/api-json`, every asset served by
//! the binary (no CDN: the page works with no network). The UI is `swagger-ui-dist` from the
//! npm registry, vendored unmodified in `assets/swagger-ui` (see its `SOURCE` and `LICENSE`).

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use http::header;

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const STYLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Shiksha assessment service API</title>
  <link rel="stylesheet" href="/api-docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api-docs/swagger-ui-bundle.js"></script>
  <script src="/api-docs/init.js"></script>
</body>
</html>
"#;

const INIT: &str = r##"window.ui = SwaggerUIBundle({
  url: "/api-json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"##;

/// An asset that changes only with the binary: cached for a day.
fn asset(content_type: &'static str, body: &'static [u8]) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
}

/// `/api-docs` and its assets.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/api-docs", get(|| async { Html(PAGE) }))
        .route(
            "/api-docs/swagger-ui-bundle.js",
            get(|| async { asset("text/javascript; charset=utf-8", BUNDLE) }),
        )
        .route(
            "/api-docs/swagger-ui.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/api-docs/init.js",
            get(|| async { asset("text/javascript; charset=utf-8", INIT.as_bytes()) }),
        )
}
