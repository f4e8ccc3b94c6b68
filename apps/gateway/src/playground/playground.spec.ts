import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-test-kit';

/** The playground's files, served by a real in-process gateway with API keys required. */
describe('gateway: the web playground at /', () => {
  let test: TestGateway;

  beforeAll(async () => {
    test = await startTestGateway({ AUTH_MODE: 'required' });
  });
  afterAll(() => test?.close());

  it('serves the page, its script and its stylesheet without a key; the API behind them still needs one', async () => {
    const page = await fetch(`${test.base}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    expect(html).toContain('<script src="/playground/playground.js" defer></script>');
    // Nothing from outside the gateway: every src and href is a local path.
    expect([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]).every((url) => url.startsWith('/playground/'))).toBe(true);
    // helmet's policy lets only this origin's scripts run.
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const script = await fetch(`${test.base}/playground/playground.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await script.text()).toContain("sessionStorage.getItem(KEY_STORAGE)");
    expect((await fetch(`${test.base}/playground/playground.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${test.base}/playground/secrets.txt`)).status).toBe(404);
    expect((await fetch(`${test.base}/v1/experts`)).status).toBe(401);
  });

  it('is not part of the API documentation', async () => {
    const document = (await (await fetch(`${test.base}/docs-json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(document.paths).some((path) => path === '/' || path.startsWith('/playground'))).toBe(false);
  });
});
