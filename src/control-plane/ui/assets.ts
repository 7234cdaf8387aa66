// The dashboard's static files, compiled into the build (no CDN, no bundler): one stylesheet and
// the graph's script. The script runs under script-src 'self': it listens on /ui/events (SSE) and
// swaps in a fresh /ui/graph.svg after each change; the page works without it.

/** The stylesheet: system fonts, WCAG AA contrast (text #1f2328 on white, links #0550ae). */
export const APP_CSS = `*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,sans-serif;color:#1f2328;background:#fff}
a{color:#0550ae}a:focus,button:focus,input:focus,select:focus{outline:3px solid #0969da;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header{background:#24292f;color:#fff}header nav{display:flex;align-items:center;gap:1rem;padding:.5rem 1rem;flex-wrap:wrap}
header ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0;flex-wrap:wrap}header a{color:#fff}header a[aria-current]{font-weight:700;text-decoration-thickness:3px}
header form{margin-left:auto}
main{padding:1rem 1.5rem;max-width:1400px}
h1{font-size:1.5rem;margin:.5rem 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;min-width:40%}caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border:1px solid #d0d7de;padding:.35rem .6rem;text-align:left;vertical-align:top}thead th{background:#f6f8fa}
.scroll{overflow-x:auto}code{font:13px ui-monospace,monospace}.id{color:#57606a}
.hint{color:#57606a;font-size:.9em}.error{color:#a40e26;font-weight:600}
.status{font-weight:600}.status-online{color:#116329}.status-unreachable{color:#7d4e00}.status-offline{color:#a40e26}
.paths{margin:0;padding-left:1rem}.path-direct{color:#116329}.path-relayed{color:#7d4e00}.path-down{color:#a40e26}
button{font:inherit;padding:.3rem .8rem;border:1px solid #1f2328;border-radius:4px;background:#f6f8fa;color:#1f2328;cursor:pointer}
input,select,textarea{font:inherit;padding:.3rem;border:1px solid #57606a;border-radius:4px}
.stack{display:flex;flex-direction:column;gap:.5rem;max-width:28rem}.row{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.output{margin:0;max-width:28rem;max-height:8rem;overflow:auto;white-space:pre-wrap;font:12px ui-monospace,monospace}.error-text{color:#a40e26}
.status-succeeded{color:#116329}.status-failed{color:#a40e26}
.created{border:2px solid #116329;padding:.5rem 1rem;background:#dafbe1}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
.graph{margin:0;max-width:640px;border:1px solid #d0d7de}.graph svg{width:100%;height:auto;display:block}
.edge{stroke-width:4}.edge-direct{stroke:#1a7f37}.edge-relayed{stroke:#9a6700;stroke-dasharray:12 6}.edge-down{stroke:#cf222e;stroke-dasharray:3 6;stroke-width:3}
.node circle{fill:#0969da;stroke:#fff;stroke-width:3}.node-unreachable circle{fill:#9a6700}.node-offline circle{fill:#8c959f}
.node text{font:13px system-ui,sans-serif;fill:#1f2328;paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}.node .ip{fill:#57606a;font-size:11px}
.legend{display:flex;gap:1.5rem;list-style:none;padding:0}.key{display:inline-block;width:2rem;height:0;border-top:4px solid;vertical-align:middle}
.key-direct{border-color:#1a7f37}.key-relayed{border-color:#9a6700;border-top-style:dashed}.key-down{border-color:#cf222e;border-top-style:dotted}
`;

/** The live graph: one EventSource, a refetch per burst of changes (at most one in flight). */
export const GRAPH_JS = `'use strict';
(function () {
  var box = document.getElementById('graph-box');
  var state = document.getElementById('graph-state');
  if (!box || !window.EventSource || !window.DOMParser) return;
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch('/ui/graph.svg', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      if (r.status === 401) { location.href = '/ui/login'; throw new Error('logged out'); }
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.text();
    }).then(function (text) {
      var svg = new DOMParser().parseFromString(text, 'image/svg+xml').documentElement;
      if (svg.nodeName !== 'svg') throw new Error('not an SVG');
      box.replaceChildren(document.importNode(svg, true));
      state.textContent = 'Live: updated ' + new Date().toLocaleTimeString();
    }).catch(function (e) {
      state.textContent = 'Live updates paused: ' + e.message;
    }).then(function () {
      busy = false;
      if (again) { again = false; refresh(); }
    });
  }
  var es = new EventSource(box.getAttribute('data-live'));
  es.addEventListener('open', function () { state.textContent = 'Live: connected'; refresh(); });
  es.addEventListener('mesh', refresh);
  es.addEventListener('error', function () { state.textContent = 'Live updates reconnecting...'; });
})();
`;

/** The tab icon: three linked points (saves browsers a 404 for /favicon.ico). */
export const FAVICON_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M3 12L8 3l5 9z" fill="none" stroke="#0969da" stroke-width="1.5"/><circle cx="3" cy="12" r="2" fill="#1a7f37"/><circle cx="8" cy="3" r="2" fill="#1a7f37"/><circle cx="13" cy="12" r="2" fill="#1a7f37"/></svg>';
