// report.html in a real browser: Debian's chromium (npm run setup installs it in a checkout) driven by
// playwright-core, never a downloaded browser. It opens pages rendered from the fixture reports from
// file:// and checks what a person sees: the heatmap's cells and their text, the mismatch's outline and
// mark, a cell's details on click and by keyboard, the regression against a base run, a narrow window;
// and that the page logs no error and requests nothing but file: and data: URLs.
//
// Under CI=true a missing /usr/bin/chromium fails (CI must run this); elsewhere the test is skipped.
// The README's screenshot, ci/report-html.png, is written when it is missing or with
// NATMATRIX_SCREENSHOT=1 (otherwise the test takes it into a temporary folder and checks its size).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import type { Browser, Page } from 'playwright-core';
import { renderHtml } from '../../harness/html.ts';
import { fullMatrix, troubled } from '../fixtures/reports/fixtures.ts';

// Debian's chromium; else Google Chrome (GitHub's Ubuntu runners have it, and Ubuntu ships chromium
// only as a snap); NMX_CHROMIUM names another Chromium-based browser
const CANDIDATES = [process.env.NMX_CHROMIUM, '/usr/bin/chromium', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'].filter((x): x is string => !!x);
const CHROMIUM = CANDIDATES.find((x) => existsSync(x)) ?? '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCREENSHOT = join(ROOT, 'ci/report-html.png');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface Ctx {
  browser: Browser;
  dir: string;
  /** the troubled report (mismatch, error, two agents, a comparison with a regression) */
  troubled: string;
  /** the real full-matrix run of two agents */
  real: string;
}
const test = anyTest as TestFn<Ctx>;

const have = existsSync(CHROMIUM);
const inCi = process.env.CI === 'true';

/** A page that records every console error, page error and request that is not file: or data:. */
async function open(t: { context: Ctx }, file: string, viewport = { width: 1280, height: 1000 }): Promise<{ page: Page; problems: string[] }> {
  const page = await t.context.browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`request: ${r.url()}`);
  });
  page.on('requestfailed', (r) => {
    if (!/^(file|data):/.test(r.url())) problems.push(`failed request: ${r.url()}`);
  });
  await page.goto(pathToFileURL(file).href);
  return { page, problems };
}

const heat = (page: Page, agent: string, a: string, b: string) => page.locator(`table.matrix:not(.diff) button.cell[data-agent="${agent}"][data-a="${a}"][data-b="${b}"]`);
type Locator = ReturnType<Page['locator']>;
// (the project's TypeScript has no DOM types: what runs in the page reaches it through globalThis)
const style = (loc: Locator, prop: string) => loc.evaluate((el: unknown, p: string) => (globalThis as any).getComputedStyle(el)[p] as string, prop);

if (!have && !inCi) {
  test.skip(`report.html in a browser (no ${CHROMIUM}: sudo apt-get install chromium, or npm run setup)`, () => {});
} else if (!have) {
  test('report.html in a browser', (t) => {
    t.fail(`${CHROMIUM} is missing: CI must run the browser test. Install it (sudo apt-get install -y chromium; npm run setup does in a checkout).`);
  });
} else {
  test.before(async (t) => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'natmatrix-test-html-'));
    const tr = troubled();
    mkdirSync(join(dir, 'troubled'));
    writeFileSync(join(dir, 'troubled/report.html'), renderHtml(tr.report, { attempts: tr.attempts, comparison: tr.comparison }));
    // the evidence the links point to, as a run folder has it
    mkdirSync(join(dir, 'troubled/cells/udp/symmetric-vs-port-restricted/try-1'), { recursive: true });
    const real = fullMatrix();
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real/report.html'), renderHtml(real.report, { attempts: real.attempts }));
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, timeout: 60_000 });
    t.context = { browser, dir, troubled: join(dir, 'troubled/report.html'), real: join(dir, 'real/report.html') };
  });

  test.after.always(async (t) => {
    await t.context.browser?.close();
    if (t.context.dir) rmSync(t.context.dir, { recursive: true, force: true });
  });

  test('the heatmaps show every cell with its count and path letter; the header the verdict', async (t) => {
    const { page, problems } = await open(t, t.context.troubled);
    t.is(await page.locator('table.matrix:not(.diff):not(.differ) button.cell').count(), 50);
    t.is(await page.locator('table.matrix[data-agent="udp"]:not(.diff) button.cell').count(), 25);
    const c = heat(page, 'tcp', 'symmetric', 'full-cone');
    await c.scrollIntoViewIfNeeded();
    t.true(await c.isVisible());
    t.regex(await c.innerText(), /3\/3\s+T/);
    t.is(await c.getAttribute('title'), 'tcp: symmetric × full-cone: 3 of 3 connected, direct via direct-tcp, as expected; unchanged since the base run', 'hovering tells the cell');
    t.regex(await heat(page, 'udp', 'dmz', 'dmz').innerText(), /3\/3\s+U/);
    t.regex(await page.locator('#verdict').innerText(), /2 of 50 cells not as expected, 1 errored/);
    // the row and column headers name the NAT types with their RFC 4787 behaviour
    t.regex(await page.locator('table.matrix:not(.diff)[data-agent="udp"] thead').innerText(), /port-restricted cone[\s\S]*EIM · APDF/);
    // the colour is the success rate's: a 3/3 cell light, a 0/3 cell dark
    t.is(await style(heat(page, 'udp', 'dmz', 'dmz'), 'backgroundColor'), 'rgb(253, 231, 37)');
    t.is(await style(heat(page, 'udp', 'symmetric', 'symmetric'), 'backgroundColor'), 'rgb(68, 1, 84)');
    t.deepEqual(problems, []);
    await page.close();
  });

  test('a mismatch is outlined heavily and marked ✗ with what was wanted; an error cell is hatched and dashed', async (t) => {
    const { page, problems } = await open(t, t.context.troubled);
    const mis = heat(page, 'udp', 'symmetric', 'full-cone');
    t.is(await mis.getAttribute('data-match'), 'false');
    t.true(parseFloat(await style(mis, 'borderTopWidth')) >= 3, 'a heavy border');
    t.is(await style(mis, 'borderTopStyle'), 'solid');
    t.is(await style(mis, 'borderTopColor'), 'rgb(17, 17, 17)');
    const text = await mis.innerText();
    t.true(text.includes('✗'), text);
    t.true(text.includes('want direct'), text);
    const ok = heat(page, 'udp', 'dmz', 'dmz');
    t.is(await style(ok, 'borderTopColor'), 'rgba(0, 0, 0, 0)', 'a cell as expected has no outline');
    const err = heat(page, 'tcp', 'port-restricted', 'dmz');
    t.is(await style(err, 'borderTopStyle'), 'dashed');
    t.regex(await style(err, 'backgroundImage'), /repeating-linear-gradient/);
    t.regex(await err.innerText(), /⚠[\s\S]*ERR 2\/3/);
    // hostile agent output is shown as text: no alert, no injected element
    t.is(await page.locator('img').count(), 0);
    t.is(await page.locator('script').count(), 1);
    t.deepEqual(problems, []);
    await page.close();
  });

  test('clicking a cell shows its details: expected, interval, time-to-direct, tries, reasons and a working evidence link', async (t) => {
    const { page, problems } = await open(t, t.context.troubled);
    // the first cell not as expected is shown on load
    t.true(await page.locator('#panel .detail:not([hidden])').first().isVisible());
    const cell = heat(page, 'udp', 'symmetric', 'port-restricted');
    await cell.click();
    const id = await cell.getAttribute('data-cell');
    const panel = page.locator(`#d-${id}`);
    t.true(await panel.isVisible());
    t.is(await page.locator('#panel .detail:not([hidden])').count(), 1, 'one cell\'s details at a time');
    t.is(await cell.getAttribute('aria-expanded'), 'true');
    const text = await panel.innerText();
    t.regex(text, /symmetric × port-restricted/);
    t.regex(text, /expected\s+failed/);
    t.regex(text, /0\/3 · 0 % \(95 % Wilson interval 0–56 %\)/);
    t.regex(text, /a: no pong within 600 ms/);
    t.is(await panel.locator('table.tries tbody tr:not(.more)').count(), 3, 'its three tries');
    const link = panel.locator('p.evidence a');
    t.is(await link.getAttribute('href'), 'cells/udp/symmetric-vs-port-restricted/');
    const target = fileURLToPath(await link.evaluate((a: unknown) => (a as { href: string }).href));
    t.true(statSync(target).isDirectory(), `the link resolves to the run folder's ${target}`);
    t.regex(page.url(), new RegExp(`#${id}$`), 'the URL names the cell');
    t.deepEqual(problems, []);
    await page.close();
  });

  test('keyboard: Tab reaches the cells, Enter opens the details and focuses them, arrows move, Escape returns', async (t) => {
    const { page, problems } = await open(t, t.context.troubled);
    const first = heat(page, 'udp', 'dmz', 'dmz');
    await first.focus();
    await page.keyboard.press('ArrowRight');
    t.is(await page.evaluate('document.activeElement.getAttribute("data-b")'), 'full-cone');
    await page.keyboard.press('ArrowDown');
    t.deepEqual(await page.evaluate('[document.activeElement.dataset.a, document.activeElement.dataset.b]'), ['full-cone', 'full-cone']);
    await page.keyboard.press('Enter');
    const id = await heat(page, 'udp', 'full-cone', 'full-cone').getAttribute('data-cell');
    t.is(await page.evaluate('document.activeElement.id'), `h-${id}`, 'the details heading has the focus');
    t.true(await page.locator(`#d-${id}`).isVisible());
    await page.keyboard.press('Escape');
    t.is(await page.evaluate('document.activeElement.id'), `b-${id}`, 'back on the cell');
    t.true(await page.locator(`#d-${id}`).isHidden());
    // a cell is reachable with Tab from the page's start
    await page.evaluate('document.activeElement.blur()');
    let reached = false;
    for (let i = 0; i < 60 && !reached; i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate('document.activeElement.classList.contains("cell")')) as boolean;
    }
    t.true(reached, 'Tab reaches a heatmap cell');
    t.deepEqual(problems, []);
    await page.close();
  });

  test('against a base run the regressed cell is shown red with its p-value, the improved one green', async (t) => {
    const { page, problems } = await open(t, t.context.troubled);
    const reg = page.locator('#base-diff [data-change="regressed"]');
    t.is(await reg.count(), 1);
    await reg.scrollIntoViewIfNeeded();
    t.true(await reg.isVisible());
    const text = await reg.innerText();
    t.regex(text, /regressed/i);
    t.regex(text, /20\/20 → 0\/3/);
    t.regex(text, /p = 5\.6e-4/);
    t.is(await style(reg, 'backgroundColor'), 'rgb(176, 0, 32)');
    t.is(await reg.getAttribute('data-a'), 'symmetric');
    const imp = page.locator('#base-diff [data-change="improved"]');
    t.is(await style(imp, 'backgroundColor'), 'rgb(0, 112, 74)');
    t.regex(await imp.innerText(), /improved/i);
    t.is(await page.locator('#base-diff [data-change="unchanged"]').count(), 47);
    // the heatmap cell carries a ▼ too, and its details say why
    t.true((await heat(page, 'udp', 'symmetric', 'full-cone').innerText()).includes('▼'));
    await reg.click();
    const id = await reg.getAttribute('data-cell');
    t.regex(await page.locator(`#d-${id}`).innerText(), /vs base run\s+regressed \(p = 5\.6e-4\)/);
    t.deepEqual(problems, []);
    await page.close();
  });

  test('a narrow window: the page does not overflow (matrices scroll in place), the details follow the cell', async (t) => {
    const { page, problems } = await open(t, t.context.troubled, { width: 390, height: 800 });
    t.true((await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth + 1')) as boolean, 'no sideways scrolling of the page');
    t.is(await page.evaluate('window.scrollY'), 0, 'the page opens at its top (the cell shown on load does not scroll it)');
    const cell = heat(page, 'udp', 'symmetric', 'port-restricted');
    await cell.scrollIntoViewIfNeeded();
    await cell.click();
    const id = await cell.getAttribute('data-cell');
    await page.waitForTimeout(300);
    t.true(await page.locator(`#d-${id}`).isVisible());
    const inView = await page.locator(`#h-${id}`).evaluate((el: any) => el.getBoundingClientRect().top >= 0 && el.getBoundingClientRect().top < (globalThis as any).innerHeight);
    t.true(inView, 'the details were scrolled into view');
    t.deepEqual(problems, []);
    await page.close();
  });

  test('the screenshot of a real full-matrix run (two agents): under 300 kB', async (t) => {
    const { page, problems } = await open(t, t.context.real, { width: 1280, height: 1000 });
    await heat(page, 'udp', 'symmetric', 'address-restricted').click();
    await page.evaluate('window.scrollTo(0, 0)');
    const png = await page.screenshot({ type: 'png' });
    t.true(png.length > 20_000 && png.length < 300_000, `${png.length} bytes`);
    t.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    if (process.env.NATMATRIX_SCREENSHOT === '1' || !existsSync(SCREENSHOT)) {
      writeFileSync(SCREENSHOT, png);
      t.log(`wrote ${SCREENSHOT} (${png.length} bytes)`);
    } else {
      t.true(readFileSync(SCREENSHOT).length < 300_000, 'the committed screenshot is under 300 kB');
    }
    t.deepEqual(problems, []);
    await page.close();
  });
}
