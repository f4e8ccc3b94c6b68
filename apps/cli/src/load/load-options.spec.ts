import { describe, expect, it } from 'vitest';
import { LoadOptionsError, isLoopbackHost, parseLoadOptions, type LoadFlags } from './load-options';

const flags = (overrides: Partial<LoadFlags> = {}): LoadFlags => ({
  url: 'http://127.0.0.1:8080',
  task: 'caption',
  concurrency: '8',
  duration: '10',
  question: 'how many airplanes are there ?',
  timeoutMs: '60000',
  ...overrides,
});

describe('parseLoadOptions', () => {
  it('turns the flags into options', () => {
    expect(parseLoadOptions(flags({ url: 'http://localhost:8080/', rate: '2.5', task: 'vqa' }))).toEqual({
      url: 'http://localhost:8080',
      task: 'vqa',
      concurrency: 8,
      durationS: 10,
      rate: 2.5,
      question: 'how many airplanes are there ?',
      timeoutMs: 60_000,
    });
  });

  it('sends only to this machine unless --allow-remote', () => {
    for (const host of ['localhost', '127.0.0.1', '127.1.2.3', '[::1]']) expect(isLoopbackHost(new URL(`http://${host}:1`).hostname), host).toBe(true);
    for (const host of ['10.0.0.1', 'example.com', '0.0.0.0', 'localhost.example.com']) expect(isLoopbackHost(host), host).toBe(false);
    expect(() => parseLoadOptions(flags({ url: 'http://10.0.0.8:8080' }))).toThrow(/not this machine.*--allow-remote/);
    expect(parseLoadOptions(flags({ url: 'https://gateway.example.com', allowRemote: true })).url).toBe('https://gateway.example.com');
  });

  it('caps concurrency, duration and rate, and reports every bad flag at once', () => {
    const error = (() => {
      try {
        parseLoadOptions(flags({ concurrency: '257', duration: '601', rate: '0', task: 'segment', url: 'ftp://127.0.0.1', timeoutMs: '1.5' }));
      } catch (caught) {
        return caught as LoadOptionsError;
      }
      throw new Error('expected a LoadOptionsError');
    })();
    expect(error).toBeInstanceOf(LoadOptionsError);
    expect(error.code).toBe('invalid_arguments');
    for (const part of ['--concurrency must be an integer in [1, 256]', '--duration must be a number in [1, 600]', '--rate must be a number in [0.1, 1000]', '--task must be caption or vqa', '--url must be http', '--timeout-ms must be an integer']) {
      expect(error.message).toContain(part);
    }
    expect(() => parseLoadOptions(flags({ concurrency: '256', duration: '600' }))).not.toThrow();
    expect(() => parseLoadOptions(flags({ concurrency: 'lots' }))).toThrow(/--concurrency/);
    expect(() => parseLoadOptions(flags({ url: 'not a url' }))).toThrow(/--url is not a URL/);
  });
});
