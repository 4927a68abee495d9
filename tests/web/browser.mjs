// Drives Debian's headless Chromium with playwright-core (from web/node_modules) for
// tests/web: `node browser.mjs sdk|console`, its settings as JSON in BROWSER_CONFIG;
// prints one JSON line with what the page saw. Flags: shared/spec/AIORTC-NOTES.md
// (host candidates as IP addresses, not mDNS names aiortc cannot resolve).
import { createRequire } from "node:module";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");
const cfg = JSON.parse(process.env.BROWSER_CONFIG);

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ],
});
const out = {};
let page;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.on("console", (m) => m.type() === "error" && (out.console = [...(out.console || []), m.text()]));
  page.on("response", (r) => r.status() >= 400 && (out.http_errors = [...(out.http_errors || []), `${r.status()} ${r.url()}`]));
  if (process.argv[2] === "sdk") await sdk(page);
  else await consolePage(page);
} catch (e) {
  out.failure = String(e && e.stack ? e.stack : e);
  if (page) out.failure += `\n-- page at ${page.url()}:\n${await page.locator("body").innerText().catch(() => "")}`;
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

// The SDK from a plain <script type="module">: the test's "backend" registered the
// page (cfg.registrations, base64 RegisterOk) and hands it the credential only.
async function sdk(page) {
  await page.goto(`${cfg.url}/healthz`);
  await page.addScriptTag({
    type: "module",
    content: `import * as actr from "${cfg.url}/sdk/actr.js"; window.actr = actr;`,
  });
  await page.waitForFunction(() => window.actr !== undefined);
  for (const [role, registration] of Object.entries(cfg.registrations)) {
    out[role] = await page.evaluate(
      async ({ registration, role, url }) => {
        const { connect, UnknownRoute, InvalidArgument } = window.actr;
        const client = await connect({ url, registration, answerOnly: role === "answerer" });
        const r = { id: client.id };
        r.types = (await client.discover()).map((e) => e.type);
        r.small = await client.callJson("acme:echo:1.0", "echo.v1.Echo.Say", { text: "hi" });
        const key = [...client.peers.peers.keys()][0];
        r.local_description = client.peers.peers.get(key).pc.localDescription.type;
        // 1 MiB of bytes each way: fragmented (DC-3) both ways.
        const blob = new Uint8Array(1024 * 1024);
        for (let i = 0; i < blob.length; i++) blob[i] = (i * 31) & 0xff;
        let bin = "";
        for (let i = 0; i < blob.length; i += 0x8000) bin += String.fromCharCode(...blob.subarray(i, i + 0x8000));
        const big = await client.callJson("acme:echo:1.0", "echo.v1.Echo.Say", { text: "big", blob: btoa(bin) }, { timeoutMs: 20000 });
        r.big = { text: big.text, same: big.blob === btoa(bin), length: atob(big.blob).length };
        try {
          await client.call("acme:echo:1.0", "echo.v1.Echo.Nope", new Uint8Array());
          r.error = "no error";
        } catch (e) {
          r.error = { code: e.code, name: e.codeName, typed: e instanceof UnknownRoute, message: e.message };
        }
        try {
          await client.callJson("acme:echo:1.0", "echo.v1.Echo.Say", { colour: "red" });
          r.bad_field = "no error";
        } catch (e) {
          r.bad_field = { typed: e instanceof InvalidArgument, message: e.message };
        }
        await client.tell("acme:echo:1.0", "echo.v1.Echo.Say", new Uint8Array());
        await client.close();
        return r;
      },
      { registration, role, url: cfg.url }
    );
  }
}

async function consolePage(page) {
  // A visitor without the token: the login form and nothing else.
  await page.goto(`${cfg.url}/console`);
  out.anonymous = {
    login_form: (await page.locator("#login").count()) === 1,
    actors_table: await page.locator("#actors").count(),
    text: await page.locator("body").innerText(),
    api_status: await page.evaluate(async () => (await fetch("/console/api/actors")).status),
    credential_status: await page.evaluate(
      async () => (await fetch("/console/api/credential", { method: "POST", headers: { "X-Actr-Console": "1" } })).status
    ),
  };
  await page.fill("#token", "not the token");
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  out.wrong_token_sees_actors = await page.locator("#actors").count();
  await page.fill("#token", cfg.token);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const row = page.locator("#actors tr", { hasText: "acme:echo:1.0" });
  await row.waitFor({ timeout: 20000 });
  await page.locator("#actors tr", { hasText: "echo.v1.Echo.Say" }).waitFor({ timeout: 20000 });
  out.listed = await page.locator("#actors").innerText();
  await row.click();
  await page.selectOption("#route", "echo.v1.Echo.Say");
  await page.fill("#request", JSON.stringify({ text: "from the console" }));
  await page.click("#call");
  await page.locator("#answer", { hasText: "from the console" }).waitFor({ timeout: 20000 });
  out.answer = JSON.parse(await page.locator("#answer").innerText());
  await page.fill("#request", JSON.stringify({ colour: "red" }));
  await page.click("#call");
  await page.locator("#error", { hasText: "colour" }).waitFor({ timeout: 10000 });
  out.form_error = await page.locator("#error").innerText();
  await page.locator("#counters", { hasText: "stats_answered" }).waitFor({ timeout: 20000 });
  out.counters = await page.locator("#counters").innerText();
  out.status = await page.locator("#status").innerText();
  await page.fill("#request", JSON.stringify({ text: "hello from the console" }, null, 2));
  await page.click("#call");
  await page.locator("#answer", { hasText: "hello from the console" }).waitFor({ timeout: 20000 });
  if (cfg.screenshot) await page.screenshot({ path: cfg.screenshot, fullPage: true });
}
