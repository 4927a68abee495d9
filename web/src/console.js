// The operators' console: live actors from /console/api/actors, their routes from
// their service specs, calls with JSON over a WebRTC data channel from this page
// (the page registers with a credential the server hands an authenticated
// operator), and live counters: the actor's Stats route and the server's /stats.
import { connect, idText } from "/sdk/actr.js";

const $ = (id) => document.getElementById(id);
const API_HEADERS = { "X-Actr-Console": "1" };
let client = null;
let actors = [];
let selected = null;

async function api(path, init = {}) {
  const resp = await fetch(path, { credentials: "same-origin", ...init });
  if (resp.status === 401) {
    location.reload(); // the session ran out: back to the login form
    throw new Error("logged out");
  }
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status} ${await resp.text()}`);
  return resp.json();
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
}

async function routesOf(actor) {
  if (!actor.spec) return [];
  try {
    const types = await client.types(actor.type);
    return [...types.routes.keys()];
  } catch {
    return [];
  }
}

async function refreshActors() {
  const body = await api("/console/api/actors");
  actors = body.actors.filter((a) => a.id !== (client && client.id));
  const tbody = $("actors");
  tbody.replaceChildren();
  for (const a of actors) {
    const row = document.createElement("tr");
    row.className = "actor" + (selected && selected.id === a.id ? " selected" : "");
    row.dataset.id = a.id;
    cell(row, a.type);
    cell(row, a.id);
    cell(row, String(a.backlog));
    cell(row, (await routesOf(a)).join(", ") || "-");
    row.onclick = () => select(a.id);
    tbody.appendChild(row);
  }
  const target = $("target");
  const current = target.value;
  target.replaceChildren(
    ...actors.map((a) => {
      const o = document.createElement("option");
      o.value = a.id;
      o.textContent = `${a.type}  (${a.id})`;
      return o;
    })
  );
  if (actors.some((a) => a.id === current)) target.value = current;
  if (!selected && actors.length) await select(actors[0].id);
}

async function select(id) {
  selected = actors.find((a) => a.id === id) || null;
  $("target").value = id;
  for (const row of $("actors").children) row.classList.toggle("selected", row.dataset.id === id);
  const routeSelect = $("route");
  const routes = selected ? await routesOf(selected) : [];
  routeSelect.replaceChildren(
    ...routes.map((r) => {
      const o = document.createElement("option");
      o.value = o.textContent = r;
      return o;
    })
  );
  await fillTemplate();
  await refreshCounters();
}

async function fillTemplate() {
  if (!selected || !$("route").value) return;
  const types = await client.types(selected.type);
  const route = types.route($("route").value);
  $("request").value = JSON.stringify(types.template(route.request), null, 2);
}

async function call(ev) {
  ev.preventDefault();
  $("answer").textContent = "";
  $("error").textContent = "";
  const target = $("target").value;
  try {
    const answer = await client.callJson(target, $("route").value, $("request").value, {
      timeoutMs: 10000,
    });
    $("answer").textContent = JSON.stringify(answer, null, 2);
  } catch (e) {
    $("error").textContent = e.codeName ? `${e.codeName} (${e.code}): ${e.message}` : String(e);
  }
}

async function refreshCounters() {
  if (!selected) return;
  try {
    const bytes = await client.call(selected.id, "actr.v1.Runtime.Stats", new Uint8Array(), {
      timeoutMs: 5000,
    });
    $("counters").textContent = JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2);
    $("counters").className = "";
  } catch (e) {
    $("counters").textContent = `${e.codeName || "error"}: ${e.message}` +
      (e.code === 10004 ? "\n(add actr:console:* to the actor's [admin] stats_from)" : "");
    $("counters").className = "muted";
  }
}

async function refreshServer() {
  const resp = await fetch("/stats");
  $("server-stats").textContent = JSON.stringify(await resp.json(), null, 2);
}

async function main() {
  const { registration } = await api("/console/api/credential", {
    method: "POST",
    headers: API_HEADERS,
  });
  client = await connect({ url: location.origin, registration });
  $("status").textContent = `connected as ${idText(client.actrId)}`;
  $("call-form").addEventListener("submit", call);
  $("route").addEventListener("change", fillTemplate);
  $("target").addEventListener("change", () => select($("target").value));
  await refreshActors();
  await refreshServer();
  setInterval(() => refreshActors().catch(() => {}), 3000);
  setInterval(() => refreshServer().catch(() => {}), 3000);
  setInterval(() => refreshCounters().catch(() => {}), 2000);
}

main().catch((e) => {
  $("status").textContent = `error: ${e.message}`;
  $("status").className = "error";
});
