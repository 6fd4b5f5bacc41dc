// Headless-browser test of the ToyStore storefront page.
//
//   node storefront.mjs <base-url> [screenshot.png] [shop|unavailable]
//
// Drives the system Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) with playwright-core.
//
// `shop` (the default) checks what a shopper sees and does, against a working store:
//   1. a grid of at least 10 toys, each with a price and its stock, the live stream connected;
//   2. asking for more than is in stock: the store answers 409, the page says sold out and the
//      stock is unchanged;
//   3. an unknown toy: the store answers 404 (the request is rewritten on its way, since the
//      page only offers toys the store sells), the page says so;
//   4. buying 2 of a toy: the page confirms the order and the shown stock goes down by 2;
//   5. another client buys through the API (here, from Node): the page shows the new stock
//      without being reloaded, and a toy another client bought out shows as sold out;
//   6. looking up the order shows its toy and quantity; a missing order shows an error.
//   Prints `storefront ok: order N`.
//
// `unavailable` runs against a store whose order replicas are all down, with the live stream
// refused too (a 503 for GET /events, as from a frontend at its stream limit): the page falls
// back to polling and still lists the toys, and a purchase ends with the store's 503 and a
// message that says the store cannot take orders and that retrying is safe, with a Retry
// button. Prints `storefront ok: 503`.
//
// Either mode saves a full-page screenshot when given a path. Exits 0, or prints what failed
// and exits 1. The whole run is limited to 90 seconds.
import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 90_000;
const STEP_TIMEOUT_MS = 15_000;
const QUANTITY = 2;
const OTHER_CLIENT_QUANTITY = 3;
const MISSING_ORDER = '999999999';

const [baseUrl, screenshotPath, mode = 'shop'] = process.argv.slice(2);
if (!baseUrl || !['shop', 'unavailable'].includes(mode)) {
  console.error('usage: node storefront.mjs <base-url> [screenshot.png] [shop|unavailable]');
  process.exit(1);
}

let browser;

// Hard limit on the whole run, whatever hangs.
const watchdog = setTimeout(() => {
  console.error(`storefront FAILED: the test did not finish within ${OVERALL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);
watchdog.unref();

class StepError extends Error {}

// Runs one step; any error inside is reported as that step's failure.
async function step(description, fn) {
  try {
    return await fn();
  } catch (err) {
    const detail = err instanceof StepError ? err.message : (err && err.message ? err.message : String(err));
    throw new StepError(`${description}: ${detail.split('\n')[0]}`);
  }
}

function fail(message) {
  throw new StepError(message);
}

// Escapes a value for use inside a double-quoted CSS attribute selector.
function cssString(value) {
  return String(value).replace(/["\\]/g, '\\$&');
}

// The card of toy `name`.
function cardOf(page, name) {
  return page.locator(`#products .card[data-product="${cssString(name)}"]`);
}

// The stock a card shows, as a number (from its data attribute; the text is for people).
async function shownStock(page, name) {
  const text = await cardOf(page, name).locator('.stock').getAttribute('data-stock');
  const stock = Number.parseInt(text, 10);
  if (!Number.isInteger(stock)) fail(`the stock of "${name}" is "${text}", not a number`);
  return stock;
}

// Waits until the card of `name` shows `expected` in stock.
async function waitForStock(page, name, expected) {
  try {
    await page.waitForFunction(
      ([toy, want]) => {
        for (const c of document.querySelectorAll('#products .card')) {
          if (c.dataset.product === toy) {
            const s = c.querySelector('.stock');
            return s !== null && Number.parseInt(s.dataset.stock, 10) === want;
          }
        }
        return false;
      },
      [name, expected]);
  } catch (err) {
    const now = await cardOf(page, name).locator('.stock').textContent().catch(() => '?');
    fail(`"${name}" shows "${String(now).trim()}", expected ${expected} in stock`);
  }
}

// Clicks Buy on the card of `name` with `quantity`, and waits for the outcome in #status.
async function buy(page, name, quantity) {
  await page.evaluate(() => {
    const s = document.querySelector('#status');
    s.textContent = '';
    s.dataset.state = '';
  });
  const c = cardOf(page, name);
  await c.locator('input.qty').fill(String(quantity));
  await c.locator('button.buy').click();
  try {
    await page.waitForFunction(() => {
      const state = document.querySelector('#status').dataset.state;
      return state === 'ok' || state === 'error';
    }, null, { timeout: 30_000 });
  } catch (err) {
    const text = await page.locator('#status').textContent().catch(() => '');
    fail(`#status shows no outcome (it says "${String(text).trim()}")`);
  }
  return {
    state: await page.locator('#status').getAttribute('data-state'),
    code: await page.locator('#status').getAttribute('data-code'),
    text: (await page.locator('#status').textContent()).trim(),
  };
}

// Another client: buys through the public API from Node, not through the page.
async function buyThroughApi(name, quantity) {
  const response = await fetch(new URL('/orders', baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `other-client-${Date.now()}-${name.length}-${quantity}` },
    body: JSON.stringify({ name, quantity }),
  });
  const body = await response.json();
  if (response.status !== 200) fail(`POST /orders answered ${response.status}: ${JSON.stringify(body)}`);
  return body.data.order_number;
}

// Types `number` into the lookup form, submits it and waits for the answer.
async function lookUp(page, number) {
  await page.evaluate(() => {
    const result = document.querySelector('#order-result');
    result.textContent = '';
    result.dataset.state = '';
  });
  await page.locator('#order-number').fill(String(number));
  await page.locator('#lookup').click();
  try {
    await page.waitForFunction(() => {
      const state = document.querySelector('#order-result').dataset.state;
      return state === 'ok' || state === 'error';
    });
  } catch (err) {
    const text = await page.locator('#order-result').textContent().catch(() => '');
    fail(`no answer in #order-result (it says "${String(text).trim()}")`);
  }
  return {
    state: await page.locator('#order-result').getAttribute('data-state'),
    text: (await page.locator('#order-result').textContent()).trim(),
  };
}

// Opens the page and checks the grid: at least 10 toys, each with a price and its stock.
async function openStore(page) {
  await step(`opening ${baseUrl}`, async () => {
    const response = await page.goto(baseUrl, { waitUntil: 'domcontentloaded' });
    if (!response) fail('no response');
    if (!response.ok()) fail(`HTTP ${response.status()}`);
  });
  const cards = page.locator('#products .card');
  await step('waiting for a grid of at least 10 toys', async () => {
    try {
      await page.waitForFunction(() => document.querySelectorAll('#products .card').length >= 10);
    } catch (err) {
      const message = await page.locator('#products-message').textContent().catch(() => '');
      fail(`only ${await cards.count()} cards${message ? ` (page says: ${message.trim()})` : ''}`);
    }
  });
  return step('reading every card: name, price and stock', async () => {
    const toys = [];
    for (const c of await cards.all()) {
      const name = await c.getAttribute('data-product');
      const title = (await c.locator('.name').textContent()).trim();
      const price = (await c.locator('.price').textContent()).trim();
      const availability = (await c.locator('.availability').textContent()).trim();
      const stock = Number.parseInt(await c.locator('.stock').getAttribute('data-stock'), 10);
      if (title !== name) fail(`card "${name}" is titled "${title}"`);
      if (!/^\$\d{1,3}(,\d{3})*\.\d\d$/.test(price)) fail(`"${name}" shows the price "${price}"`);
      if (!Number.isInteger(stock) || stock < 0) fail(`"${name}" shows no stock`);
      const expected = stock === 0 ? /^Sold out$/ : stock <= 10 ? new RegExp(`^Only ${stock} left$`) : /^[\d,]+ in stock$/;
      if (!expected.test(availability)) fail(`"${name}" with ${stock} in stock says "${availability}"`);
      toys.push({ name, price, stock });
    }
    return toys;
  });
}

async function waitForLive(page) {
  await step('waiting for the live stock stream', async () => {
    try {
      await page.waitForFunction(() => document.querySelector('#live').dataset.state === 'live');
    } catch (err) {
      fail(`the page says "${(await page.locator('#live').textContent()).trim()}"`);
    }
  });
}

async function shop(page) {
  const toys = await openStore(page);
  if (new Set(toys.map((t) => t.price)).size < 2) fail(`every toy has the same price: ${toys[0].price}`);
  await waitForLive(page);

  // Three toys: one to buy, one to ask too much of, one for the other client to buy out.
  const byStock = toys.filter((t) => t.stock >= 10).sort((a, b) => a.stock - b.stock);
  if (byStock.length < 3) fail(`need 3 toys with at least 10 in stock: ${JSON.stringify(toys)}`);
  const [scarce, asked, bought] = [byStock[0], byStock[1], byStock[byStock.length - 1]];

  // 2. More than is in stock: 409, a sold-out message, the stock unchanged.
  await step(`asking for ${asked.stock + 1} × "${asked.name}" (${asked.stock} in stock)`, async () => {
    const answer = page.waitForResponse((r) => r.url().endsWith('/orders') && r.request().method() === 'POST');
    const outcome = await buy(page, asked.name, asked.stock + 1);
    const status = (await answer).status();
    if (status !== 409) fail(`the store answered ${status}, expected 409`);
    if (outcome.state !== 'error' || outcome.code !== '409') fail(`#status: ${JSON.stringify(outcome)}`);
    if (!/^Sold out: there are only [\d,]+ .+ left, not [\d,]+\. Nothing was ordered/.test(outcome.text)) {
      fail(`the message is "${outcome.text}"`);
    }
    if (await shownStock(page, asked.name) !== asked.stock) fail('the shown stock changed');
  });

  // 3. An unknown toy: the real store's 404 (the page only offers toys it sells, so the
  //    request is rewritten on its way), and a message that says so.
  await step('ordering an unknown toy', async () => {
    await page.route('**/orders', (route) =>
      route.continue({ postData: JSON.stringify({ name: 'Unicorn-that-is-not-sold-here', quantity: 1 }) }));
    const outcome = await buy(page, bought.name, 1);
    await page.unroute('**/orders');
    if (outcome.state !== 'error' || outcome.code !== '404') fail(`#status: ${JSON.stringify(outcome)}`);
    if (!/^Unknown toy: the store does not sell/.test(outcome.text)) fail(`the message is "${outcome.text}"`);
  });

  // 4. Buy 2: an order number, and the stock goes down by 2.
  const orderNumber = await step(`buying ${QUANTITY} × "${bought.name}"`, async () => {
    const outcome = await buy(page, bought.name, QUANTITY);
    const match = /^Order #(\d+) placed: 2 × .+ for \$[\d,]+\.\d\d\.$/.exec(outcome.text);
    if (outcome.state !== 'ok' || !match) fail(`#status says "${outcome.text}"`);
    return match[1];
  });
  await step(`waiting for the stock of "${bought.name}" to go from ${bought.stock} to ${bought.stock - QUANTITY}`,
    () => waitForStock(page, bought.name, bought.stock - QUANTITY));

  // 5. Another client buys through the API; the page, not reloaded, follows.
  await page.evaluate(() => { window.notReloaded = true; });
  await step(`another client buys ${OTHER_CLIENT_QUANTITY} × "${bought.name}" and every "${scarce.name}"`, async () => {
    await buyThroughApi(bought.name, OTHER_CLIENT_QUANTITY);
    await buyThroughApi(scarce.name, scarce.stock);
    await waitForStock(page, bought.name, bought.stock - QUANTITY - OTHER_CLIENT_QUANTITY);
    await waitForStock(page, scarce.name, 0);
    const availability = (await cardOf(page, scarce.name).locator('.availability').textContent()).trim();
    if (availability !== 'Sold out') fail(`"${scarce.name}" says "${availability}"`);
    if (!(await cardOf(page, scarce.name).locator('button.buy').isDisabled())) fail('its Buy button is enabled');
    if (!(await page.evaluate(() => window.notReloaded === true))) fail('the page was reloaded');
  });

  // 6. Look the order up, then one that does not exist.
  await step(`looking up missing order #${MISSING_ORDER}`, async () => {
    const result = await lookUp(page, MISSING_ORDER);
    if (result.state !== 'error' || !result.text.startsWith(`There is no order #${MISSING_ORDER}.`)) {
      fail(`#order-result says "${result.text}"`);
    }
  });
  await step(`looking up order #${orderNumber}`, async () => {
    const result = await lookUp(page, orderNumber);
    if (result.state !== 'ok') fail(`#order-result shows an error: "${result.text}"`);
    const name = (await page.locator('#order-result .order-name').textContent()).trim();
    const quantity = (await page.locator('#order-result .order-quantity').textContent()).trim();
    if (name !== bought.name) fail(`order is for "${name}", expected "${bought.name}"`);
    if (quantity !== String(QUANTITY)) fail(`order quantity is ${quantity}, expected ${QUANTITY}`);
    if (result.text !== `Order #${orderNumber}: ${QUANTITY} × ${bought.name}, confirmed.`) {
      fail(`#order-result says "${result.text}"`);
    }
  });
  return `order ${orderNumber}`;
}

async function unavailable(page) {
  await page.route('**/events', (route) => route.fulfill({
    status: 503,
    contentType: 'application/json',
    body: JSON.stringify({ error: { code: 503, message: 'no live stream in this test' } }),
  }));
  const toys = await openStore(page);
  await step('checking that the page polls without the live stream', async () => {
    const badge = page.locator('#live');
    if (await badge.getAttribute('data-state') !== 'polling') fail(`the badge says "${await badge.textContent()}"`);
    if ((await badge.textContent()).trim() !== 'Updating every 5 s') fail(`the badge says "${await badge.textContent()}"`);
  });
  const toy = toys.find((t) => t.stock > 0);
  if (!toy) fail('every toy is sold out');
  await step(`buying 1 × "${toy.name}" with no order replica running`, async () => {
    const outcome = await buy(page, toy.name, 1);
    if (outcome.state !== 'error' || outcome.code !== '503') fail(`#status: ${JSON.stringify(outcome)}`);
    if (!/^The store cannot take orders right now.*Retrying is safe/.test(outcome.text)) {
      fail(`the message is "${outcome.text}"`);
    }
    if (!(await page.locator('#status button#retry').isVisible())) fail('no Retry button');
    if (await shownStock(page, toy.name) !== toy.stock) fail('the shown stock changed');
  });
  return '503';
}

async function main() {
  browser = await step('launching Chromium', () =>
    chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }));
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  const result = mode === 'shop' ? await shop(page) : await unavailable(page);

  if (pageErrors.length > 0) fail(`JavaScript errors on the page: ${pageErrors.join('; ')}`);
  if (screenshotPath) {
    await step(`saving a screenshot to ${screenshotPath}`, async () => {
      await page.mouse.move(0, 0);
      await page.waitForTimeout(1500); // let the highlight of the last change fade
      await page.screenshot({ path: screenshotPath, fullPage: true });
    });
  }
  console.log(`storefront ok: ${result}`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  console.error(`storefront FAILED: ${err instanceof StepError ? err.message : (err && err.stack) || err}`);
  exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  clearTimeout(watchdog);
}
process.exit(exitCode);
