//! The small HTML page a magic link opens: `GET /auth/verify?token=…`. Loading it changes
//! nothing (mail scanners prefetch links); the person presses the button, the page POSTs the
//! token to `/api/v1/auth/verify` and shows the result.

use crate::state::SharedState;
use axum::response::Html;
use axum::routing::get;
use axum::Router;

pub fn router() -> Router<SharedState> {
    Router::new().route("/auth/verify", get(verify_page))
}

async fn verify_page() -> Html<&'static str> {
    Html(VERIFY_PAGE)
}

const VERIFY_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to Talky</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem}
button{font-size:1rem;padding:.6rem 1.2rem}pre{white-space:pre-wrap;word-break:break-all;background:#f4f4f4;padding:1rem}</style>
</head><body>
<h1>Sign in to Talky</h1>
<p id="msg">Press the button to finish signing in.</p>
<button id="go">Sign in</button>
<pre id="out" hidden></pre>
<script>
const token = new URLSearchParams(location.search).get("token");
const msg = document.getElementById("msg"), out = document.getElementById("out"), go = document.getElementById("go");
if (!token) { msg.textContent = "This link has no token."; go.hidden = true; }
go.addEventListener("click", async () => {
  go.disabled = true;
  try {
    const r = await fetch("/api/v1/auth/verify", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token})});
    const body = await r.json();
    if (r.ok) {
      msg.textContent = "Signed in as " + body.user.email + ". Your access token (send it as 'Authorization: Bearer <token>'):";
      out.textContent = body.access_token; out.hidden = false; go.hidden = true;
      try { localStorage.setItem("talky_access_token", body.access_token); } catch (e) {}
    } else { msg.textContent = body.detail || "Sign-in failed."; go.hidden = true; }
  } catch (e) { msg.textContent = "Could not reach Talky: " + e; go.disabled = false; }
});
</script></body></html>"#;
