import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../errors/gateway-error';
import { images } from '../testing/gateway-test-kit';
import { ImageIntake, type IntakeLimits, type RawInferenceInput } from './image-intake.service';

const LIMITS: IntakeLimits = { maxImageBytes: 64 * 1024, maxImagePixels: 100 * 100, maxQuestionChars: 50, defaultTimeoutMs: 5000, maxTimeoutMs: 10_000 };
const intake = new ImageIntake(LIMITS);

async function rejection(promise: Promise<unknown>): Promise<{ status: number; code: string; message: string }> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  const { status, code, message } = error as GatewayError;
  return { status, code, message };
}

describe('ImageIntake', () => {
  let png: Buffer;
  beforeAll(async () => {
    png = await images.png();
  });

  const json = (body: unknown, extra: Partial<RawInferenceInput> = {}): RawInferenceInput => ({ encoding: 'json', body, ...extra });

  it.each([
    ['png', images.png, 'image/png'],
    ['jpeg', images.jpeg, 'image/jpeg'],
    ['webp', images.webp, 'image/webp'],
    ['tiff', images.tiff, 'image/tiff'],
  ] as const)('accepts %s, sniffed from the bytes, with its header dimensions', async (format, make, mediaType) => {
    const accepted = await intake.accept('caption', { encoding: 'multipart', file: await make(), body: {} });
    expect(accepted.image).toMatchObject({ format, mediaType, width: 16, height: 16 });
    expect(accepted.params).toEqual({});
    expect(accepted.timeoutMs).toBe(LIMITS.defaultTimeoutMs);
  });

  // The header read of each format: width and height each in its place (every other test image is square).
  const oblong = (format: 'png' | 'jpeg' | 'webp' | 'tiff', width: number, height: number) =>
    sharp({ create: { width, height, channels: 3, background: '#556b2f' } }).toFormat(format).toBuffer();

  it.each(['png', 'jpeg', 'webp', 'tiff'] as const)('reads the width and the height of a %s from its header', async (format) => {
    const accepted = await intake.accept('caption', { encoding: 'multipart', file: await oblong(format, 40, 9), body: {} });
    expect(accepted.image).toMatchObject({ format, width: 40, height: 9 });
    // 101 × 100 is one pixel over the limit of 100 × 100.
    expect(await rejection(intake.accept('caption', { encoding: 'multipart', file: await oblong(format, 101, 100), body: {} }))).toMatchObject({
      status: 422,
      code: 'too_many_pixels',
      message: expect.stringContaining('101×100'),
    });
  });

  it.each(['png', 'jpeg', 'webp', 'tiff'] as const)('refuses a %s cut inside its header with 422 invalid_image', async (format) => {
    const cut = (await oblong(format, 40, 9)).subarray(0, 20);
    expect(await rejection(intake.accept('caption', { encoding: 'multipart', file: cut, body: {} }))).toMatchObject({ status: 422, code: 'invalid_image' });
  });

  it('accepts base64, URL-safe base64 and data URLs (declared type ignored), whitespace included', async () => {
    const b64 = png.toString('base64');
    for (const image of [b64, png.toString('base64url'), `data:image/gif;base64,${b64}`, b64.replace(/(.{20})/g, '$1\n')]) {
      const accepted = await intake.accept('caption', json({ image }));
      expect(accepted.image.bytes.equals(png)).toBe(true);
      expect(accepted.image.format).toBe('png');
    }
  });

  it('accepts a question, params (object or JSON text) and a timeout (body and header: the smaller wins)', async () => {
    const accepted = await intake.accept(
      'vqa',
      json({ image: png.toString('base64'), question: '  How many buildings?  ', params: { maxNewTokens: 8, stopStrings: ['.'] }, timeoutMs: 9000 }, { timeoutHeader: '3000' }),
    );
    expect(accepted).toMatchObject({ task: 'vqa', question: 'How many buildings?', params: { maxNewTokens: 8, stopStrings: ['.'] }, timeoutMs: 3000 });
    const multipart = await intake.accept('vqa', { encoding: 'multipart', file: png, body: { question: 'Is it rural?', params: '{"seed":7}', timeoutMs: '2500' } });
    expect(multipart).toMatchObject({ question: 'Is it rural?', params: { seed: 7 }, timeoutMs: 2500 });
  });

  it.each<[string, () => Promise<RawInferenceInput>, number, string]>([
    ['no image at all', async () => json({}), 400, 'missing_image'],
    ['no body', async () => json(undefined), 400, 'missing_image'],
    ['an empty file', async () => ({ encoding: 'multipart', file: Buffer.alloc(0), body: {} }), 400, 'missing_image'],
    ['an empty data URL', async () => json({ image: 'data:image/png;base64,' }), 400, 'missing_image'],
    ['bad base64', async () => json({ image: 'not base64!' }), 400, 'invalid_base64'],
    ['base64 of impossible length', async () => json({ image: 'AAAAA' }), 400, 'invalid_base64'],
    ['a non-base64 data URL', async () => json({ image: 'data:image/png,abc' }), 400, 'invalid_base64'],
    ['a number as image', async () => json({ image: 42 }), 400, 'invalid_base64'],
    ['a body that is not an object', async () => json(['x']), 400, 'bad_request'],
    ['an unknown field', async () => json({ image: 'AAAA', timeout: 5 }), 400, 'unknown_field'],
    ['a question on captions', async () => json({ image: 'AAAA', question: 'why?' }), 400, 'unknown_field'],
    ['a GIF', async () => ({ encoding: 'multipart', file: await images.gif(), body: {} }), 415, 'unsupported_media_type'],
    ['text', async () => ({ encoding: 'multipart', file: Buffer.from('hello world'), body: {} }), 415, 'unsupported_media_type'],
    ['too many bytes (file)', async () => ({ encoding: 'multipart', file: await images.noisyPng(160, 160), body: {} }), 413, 'payload_too_large'],
    ['too many bytes (base64)', async () => json({ image: Buffer.alloc(LIMITS.maxImageBytes + 3).toString('base64') }), 413, 'payload_too_large'],
    ['too many pixels', async () => ({ encoding: 'multipart', file: await images.png(101, 100), body: {} }), 422, 'too_many_pixels'],
    ['a corrupt header', async () => ({ encoding: 'multipart', file: images.corruptPng(), body: {} }), 422, 'invalid_image'],
    ['bad params', async () => json({ image: png.toString('base64'), params: { topP: 2 } }), 400, 'invalid_params'],
    ['unknown params', async () => json({ image: png.toString('base64'), params: { beams: 2 } }), 400, 'invalid_params'],
    ['params that are not JSON', async () => ({ encoding: 'multipart', file: png, body: { params: '{maxNewTokens:1' } }), 400, 'invalid_params'],
    ['params that are an array', async () => json({ image: png.toString('base64'), params: [1] }), 400, 'invalid_params'],
    ['a timeout above the maximum', async () => json({ image: png.toString('base64'), timeoutMs: 10_001 }), 400, 'invalid_timeout'],
    ['a zero timeout', async () => json({ image: png.toString('base64'), timeoutMs: 0 }), 400, 'invalid_timeout'],
    ['a fractional timeout', async () => json({ image: png.toString('base64'), timeoutMs: 1.5 }), 400, 'invalid_timeout'],
    ['a textual JSON timeout', async () => json({ image: png.toString('base64'), timeoutMs: '100' }), 400, 'invalid_timeout'],
    ['a bad timeout header', async () => json({ image: png.toString('base64') }, { timeoutHeader: '5s' }), 400, 'invalid_timeout'],
    ['a header timeout above the maximum', async () => json({ image: png.toString('base64') }, { timeoutHeader: '999999' }), 400, 'invalid_timeout'],
  ])('caption with %s → %i %s', async (_name, input, status, code) => {
    expect(await rejection(intake.accept('caption', await input()))).toMatchObject({ status, code });
  });

  it.each<[string, unknown, number, string]>([
    ['no question', undefined, 400, 'missing_question'],
    ['an empty question', '', 400, 'missing_question'],
    ['a blank question', ' \n\t ', 400, 'missing_question'],
    ['a question that is not a string', { text: 'hi' }, 400, 'invalid_question'],
    ['a question that is too long', 'x'.repeat(51), 422, 'question_too_long'],
  ])('vqa with %s → %i %s', async (_name, question, status, code) => {
    expect(await rejection(intake.accept('vqa', { encoding: 'multipart', file: png, body: question === undefined ? {} : { question } }))).toMatchObject({ status, code });
  });

  it('counts question length in characters, not UTF-16 units', async () => {
    expect(await intake.accept('vqa', { encoding: 'multipart', file: png, body: { question: '🛰'.repeat(50) } })).toMatchObject({ question: '🛰'.repeat(50) });
  });

  it('names the format it found and the field that is wrong', async () => {
    expect((await rejection(intake.acceptImage(await images.gif()))).message).toMatch(/^GIF images are not supported/);
    expect((await rejection(intake.accept('caption', json({ image: png.toString('base64'), params: { numBeams: 0 } })))).message).toMatch(/params\.numBeams/);
    expect((await rejection(intake.acceptImage(await images.png(200, 200)))).message).toMatch(/200×200 = 40000 pixels exceeds the limit of 10000/);
  });
});
