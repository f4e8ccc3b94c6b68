import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ephemeralPortsStart, freePort, locateRedis } from './redis-locator';

describe('locateRedis', () => {
  it('uses REDIS_URL when it answers, and refuses one that does not', async () => {
    expect(await locateRedis('redis://127.0.0.1:6379')).toMatchObject({ url: 'redis://127.0.0.1:6379', how: 'REDIS_URL' });
    const silent = `redis://127.0.0.1:${await freePort()}`;
    await expect(locateRedis(silent)).rejects.toThrow(`REDIS_URL=${silent} does not answer PING`);
  });

  it('falls back to the Redis on 127.0.0.1:6379', async () => {
    const found = await locateRedis(undefined);
    expect(found.url).toBe('redis://127.0.0.1:6379');
    expect(found.started).toBeUndefined();
  });
});

describe('freePort', () => {
  it('hands out distinct, bindable ports below the range outgoing connections take their local ports from', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(10_000);
      expect(port).toBeLessThan(ephemeralPortsStart());
    }
    // Bindable on the loopback address a service listens on, as handed out.
    for (const port of ports.slice(0, 5)) {
      await new Promise<void>((resolve, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
      });
    }
  });

  it('reads where the kernel’s ephemeral range starts from /proc', () => {
    const [start] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    expect(ephemeralPortsStart()).toBe(Number(start));
  });
});
