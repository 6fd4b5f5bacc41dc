// Headless-browser test of the ToyStore storefront page.
//
//   node storefront.mjs <base-url> [screenshot.png]
//
// Drives the system Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) with
// playwright-core: lists the toys, buys 2 of the first one, checks the stock
// went down by 2, looks the order up, and looks up an order that does not
// exist. Prints `storefront ok: order N` and exits 0, or prints what failed
// and exits 1. The whole run is limited to 60 seconds.
import { chromium } from 'playwright-core';

const OVERALL_TIMEOUT_MS = 60_000;
const STEP_TIMEOUT_MS = 15_000;
const QUANTITY = 2;
const MISSING_ORDER = '999999999';

const [baseUrl, screenshotPath] = process.argv.slice(2);
if (!baseUrl) {
  console.error('usage: node storefront.mjs <base-url> [screenshot.png]');
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

async function main() {
  browser = await step('launching Chromium', () =>
    chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }));
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));

  // 1. Open the page and wait for the list of toys.
  await step(`opening ${baseUrl}`, async () => {
    const response = await page.goto(baseUrl, { waitUntil: 'domcontentloaded' });
    if (!response) fail('no response');
    if (!response.ok()) fail(`HTTP ${response.status()}`);
  });
  const rows = page.locator('#products tr[data-product]');
  await step('waiting for at least 10 toys in #products', async () => {
    try {
      await page.waitForFunction(
        () => document.querySelectorAll('#products tr[data-product]').length >= 10);
    } catch (err) {
      const count = await rows.count();
      const message = await page.locator('#products-message').textContent().catch(() => '');
      fail(`only ${count} rows after ${STEP_TIMEOUT_MS / 1000} s${message ? ` (page says: ${message.trim()})` : ''}`);
    }
  });

  // 2. Buy 2 of the first toy.
  const firstRow = rows.first();
  const toy = await firstRow.getAttribute('data-product');
  const stockBefore = await step(`reading the stock of "${toy}"`, async () => {
    const text = (await firstRow.locator('.stock').textContent()).trim();
    const stock = Number.parseInt(text, 10);
    if (!Number.isInteger(stock)) fail(`.stock cell says "${text}", not a number`);
    if (stock < QUANTITY) fail(`only ${stock} in stock, need at least ${QUANTITY}`);
    return stock;
  });
  // Address the row by its name from now on: the page redraws the table.
  const toyRow = page.locator(`#products tr[data-product="${cssString(toy)}"]`);

  const orderNumber = await step(`buying ${QUANTITY} × "${toy}"`, async () => {
    await toyRow.locator('input.qty').fill(String(QUANTITY));
    await toyRow.locator('button.buy').click();
    let text = '';
    try {
      await page.waitForFunction(() => {
        const status = document.querySelector('#status');
        const t = status ? status.textContent : '';
        return /Order #\d+ placed/.test(t) || (status && status.dataset.state === 'error');
      });
    } catch (err) {
      text = await page.locator('#status').textContent().catch(() => '');
      fail(`#status did not report an order (it says "${text.trim()}")`);
    }
    text = (await page.locator('#status').textContent()).trim();
    const match = /Order #(\d+) placed/.exec(text);
    if (!match) fail(`#status says "${text}"`);
    return match[1];
  });

  // 3. The page reloads the list after buying: the stock went down by 2.
  const expectedStock = stockBefore - QUANTITY;
  await step(`waiting for the stock of "${toy}" to go from ${stockBefore} to ${expectedStock}`, async () => {
    try {
      await page.waitForFunction(
        ([name, expected]) => {
          for (const tr of document.querySelectorAll('#products tr[data-product]')) {
            if (tr.dataset.product === name) {
              const cell = tr.querySelector('.stock');
              return cell !== null && Number.parseInt(cell.textContent, 10) === expected;
            }
          }
          return false;
        },
        [toy, expectedStock]);
    } catch (err) {
      const now = await toyRow.locator('.stock').textContent().catch(() => '?');
      fail(`stock shows "${String(now).trim()}"`);
    }
  });

  // 4. Look the order up.
  await step(`looking up order #${orderNumber}`, async () => {
    await lookUp(page, orderNumber);
    const state = await page.locator('#order-result').getAttribute('data-state');
    const text = (await page.locator('#order-result').textContent()).trim();
    if (state !== 'ok') fail(`#order-result shows an error: "${text}"`);
    const name = await page.locator('#order-result .order-name').textContent().catch(() => null);
    const quantity = await page.locator('#order-result .order-quantity').textContent().catch(() => null);
    if (name !== null && name.trim() !== toy) fail(`order is for "${name.trim()}", expected "${toy}"`);
    if (quantity !== null && quantity.trim() !== String(QUANTITY)) {
      fail(`order quantity is ${quantity.trim()}, expected ${QUANTITY}`);
    }
    if (!text.includes(toy) || !new RegExp(`\\b${QUANTITY}\\b`).test(text)) {
      fail(`#order-result says "${text}", expected "${toy}" and quantity ${QUANTITY}`);
    }
  });

  // 5. An order that does not exist shows an error.
  await step(`looking up missing order #${MISSING_ORDER}`, async () => {
    await lookUp(page, MISSING_ORDER);
    const state = await page.locator('#order-result').getAttribute('data-state');
    const text = (await page.locator('#order-result').textContent()).trim();
    if (state !== 'error' || !/error|not found|404/i.test(text)) {
      fail(`expected an error, #order-result says "${text}"`);
    }
  });

  if (pageErrors.length > 0) fail(`JavaScript errors on the page: ${pageErrors.join('; ')}`);

  // 6. Screenshot, if asked for.
  if (screenshotPath) {
    await step(`saving a screenshot to ${screenshotPath}`, () =>
      page.screenshot({ path: screenshotPath, fullPage: true }));
  }

  console.log(`storefront ok: order ${orderNumber}`);
}

// Types `number` into the lookup form, submits it and waits for the answer.
async function lookUp(page, number) {
  // Clear the previous answer so we wait for the new one.
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
}

// Escapes a value for use inside a double-quoted CSS attribute selector.
function cssString(value) {
  return String(value).replace(/["\\]/g, '\\$&');
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
