// The studio in a real browser (tests/studio/test_studio.py): Debian's Chromium driven by playwright-core.
// Usage: node studio_browser.mjs URL CHROMIUM OUT_DIR
// Types a prompt, waits for the motion, takes two canvas screenshots 0.5 s apart, downloads the BVH, and
// writes OUT_DIR/result.json, OUT_DIR/a.png, OUT_DIR/b.png, OUT_DIR/page.png and OUT_DIR/motion.bvh.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, executablePath, out] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
});
const result = { requests: [], console: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 }, acceptDownloads: true });
  page.on("request", (request) => result.requests.push(request.url()));
  page.on("console", (message) => result.console.push(`${message.type()}: ${message.text()}`));
  page.on("pageerror", (error) => result.console.push(`pageerror: ${error.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-state="idle"]', { timeout: 60000 });
  await page.click("#prompt");
  await page.keyboard.type("a person walks forward", { delay: 40 }); // as a user types: debounced requests
  await page.waitForSelector('body[data-state="ready"]', { timeout: 60000 });
  result.status = await page.textContent("#status");
  result.frames = await page.getAttribute("body", "data-frames");
  const canvas = page.locator("canvas");
  const a = await canvas.screenshot();
  await page.waitForTimeout(500);
  const b = await canvas.screenshot();
  writeFileSync(join(out, "a.png"), a);
  writeFileSync(join(out, "b.png"), b);
  result.differ = !a.equals(b);
  await page.screenshot({ path: join(out, "page.png") });
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#dl-bvh")]);
  await download.saveAs(join(out, "motion.bvh"));
  result.download = download.suggestedFilename();
} finally {
  await browser.close();
  writeFileSync(join(out, "result.json"), JSON.stringify(result));
}
