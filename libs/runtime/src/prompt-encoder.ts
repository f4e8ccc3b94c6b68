import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { InvalidGenerationRequestError, ModelFileError } from './errors';

/** One chat turn's content part, in the shape Hugging Face chat templates expect. */
type ContentPart = { type: 'image' } | { type: 'text'; text: string };

/**
 * Where the image positions go. `chat`: the chat template places an image placeholder per image (LLaVA
 * family). `query-prefix`: InstructBLIP's processor puts the query positions first, then the tokenizer's
 * own encoding of the instruction (with its BOS); there is no template.
 */
export type PromptLayout = 'chat' | 'query-prefix';

export interface PromptEncoderOptions {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  tokenizerFile: string;
  /** The Jinja chat template and the file it came from; required for the `chat` layout. */
  chatTemplate: { template: string; file: string } | undefined;
  imageTokenIndex: number;
  layout: PromptLayout;
}

export interface EncodedPrompt {
  /** Token ids with image placeholder i expanded to `imageTokens[i]` image positions. */
  inputIds: number[];
  /** The prompt text after the chat template, before tokenisation. */
  renderedPrompt: string;
  /**
   * Where batch padding goes: before index `padAt` of `inputIds` (0: left padding; InstructBLIP pads
   * between the query positions and the text, as its processor does).
   */
  padAt: number;
}

function specialToken(config: Record<string, unknown>, key: string): string | undefined {
  const value = config[key];
  if (typeof value === 'string') return value;
  // Older tokenizer_config.json files store special tokens as AddedToken objects.
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

export function buildTokenizer(json: Record<string, unknown>, config: Record<string, unknown>, file: string): Tokenizer {
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(json, config);
  } catch (error) {
    throw new ModelFileError(file, `cannot build the tokenizer: ${(error as Error).message}`, { cause: error });
  }
  matchByteFallbackToHf(tokenizer.decoder);
  return tokenizer;
}

/** A decoder node of @huggingface/tokenizers, as far as the fix below needs it. */
interface DecoderNode {
  decoders?: DecoderNode[];
  text_decoder?: { decode(bytes: Uint8Array): string };
  config?: { type?: string };
}

/**
 * HF tokenizers' ByteFallback turns a run of byte tokens that is not valid UTF-8 into one U+FFFD per byte;
 * the JS port decodes the run leniently (valid parts kept), so texts with broken byte runs differ. Give its
 * ByteFallback HF's rule.
 */
function matchByteFallbackToHf(decoder: unknown): void {
  const node = decoder as DecoderNode | null;
  if (!node) return;
  node.decoders?.forEach(matchByteFallbackToHf);
  if (node.config?.type === 'ByteFallback' && node.text_decoder) {
    const strict = new TextDecoder('utf-8', { fatal: true });
    node.text_decoder = {
      decode: (bytes) => {
        try {
          return strict.decode(bytes);
        } catch {
          return '\uFFFD'.repeat(bytes.length);
        }
      },
    };
  }
}

/**
 * Turns a user prompt and its images into model input ids: applies the model's chat template with one user
 * turn (the images, then the text, as `processor.apply_chat_template` does), tokenises with the model's
 * tokenizer.json, and expands each image placeholder to the positions that image's features occupy.
 */
export class PromptEncoder {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | undefined;
  private readonly specialTokens: Record<string, string | undefined>;
  /** Experts see the same few templated prompts again and again; encoding them once saves ~0.1 ms a request. */
  private readonly cache = new Map<string, EncodedPrompt>();
  private static readonly CACHE_SIZE = 512;

  constructor(private readonly options: PromptEncoderOptions) {
    this.tokenizer = buildTokenizer(options.tokenizerJson, options.tokenizerConfig, options.tokenizerFile);
    const source = options.chatTemplate;
    if (options.layout === 'chat' && source !== undefined) {
      try {
        this.template = new Template(source.template);
      } catch (error) {
        throw new ModelFileError(source.file, `chat template does not parse: ${(error as Error).message}`, { cause: error });
      }
    }
    this.specialTokens = {
      bos_token: specialToken(options.tokenizerConfig, 'bos_token'),
      eos_token: specialToken(options.tokenizerConfig, 'eos_token'),
      pad_token: specialToken(options.tokenizerConfig, 'pad_token'),
      unk_token: specialToken(options.tokenizerConfig, 'unk_token'),
    };
    if (this.template && source) this.checkTemplate(source.file);
  }

  /** A template that renders no image slot (or two for one image) is refused at load, not at the first request. */
  private checkTemplate(file: string): void {
    let rendered: string;
    try {
      rendered = this.render('x', 1);
    } catch (error) {
      throw new ModelFileError(file, `chat template fails to render a user turn: ${(error as Error).message}`, { cause: error });
    }
    const slots = this.countPlaceholders(this.tokenizer.encode(rendered, { add_special_tokens: false }).ids);
    if (slots !== 1) {
      throw new ModelFileError(
        file,
        `chat template renders ${slots} image placeholders (token id ${this.options.imageTokenIndex}) for a turn with one image; it must render exactly one`,
      );
    }
  }

  private countPlaceholders(ids: readonly number[]): number {
    let count = 0;
    for (const id of ids) if (id === this.options.imageTokenIndex) count++;
    return count;
  }

  /**
   * Renders the chat template for one user turn: `imageCount` image parts, then the text. With `raw`, or
   * without a template, the prompt is used as given (then it must hold the placeholders itself).
   */
  render(prompt: string, imageCount: number, raw = false): string {
    if (raw || !this.template) return prompt;
    const content: ContentPart[] = [
      ...Array.from({ length: imageCount }, (): ContentPart => ({ type: 'image' })),
      { type: 'text', text: prompt },
    ];
    return this.template.render({ messages: [{ role: 'user', content }], add_generation_prompt: true, ...this.specialTokens });
  }

  /** Encodes a prompt whose image i takes `imageTokens[i]` positions. */
  encode(prompt: string, imageTokens: readonly number[], raw = false): EncodedPrompt {
    const key = `${imageTokens.join(',')}|${raw ? 1 : 0}|${prompt}`;
    let encoded = this.cache.get(key);
    if (!encoded) {
      encoded = this.options.layout === 'query-prefix' ? this.encodeQueryPrefix(prompt, imageTokens) : this.encodeChat(prompt, imageTokens, raw);
      if (this.cache.size >= PromptEncoder.CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, encoded);
    }
    return { ...encoded, inputIds: [...encoded.inputIds] };
  }

  private encodeChat(prompt: string, imageTokens: readonly number[], raw: boolean): EncodedPrompt {
    const renderedPrompt = this.render(prompt, imageTokens.length, raw);
    const ids = this.tokenizer.encode(renderedPrompt, { add_special_tokens: false }).ids;
    const placeholders = this.countPlaceholders(ids);
    if (placeholders !== imageTokens.length) {
      throw new InvalidGenerationRequestError(
        placeholders > imageTokens.length
          ? `the prompt holds ${placeholders} image placeholders but ${imageTokens.length} image(s) were given (a prompt may not contain the image token itself)`
          : `${imageTokens.length} image(s) were given but the prompt holds ${placeholders} image placeholder(s)`,
      );
    }
    const inputIds: number[] = [];
    let image = 0;
    for (const id of ids) {
      if (id === this.options.imageTokenIndex) {
        for (let i = 0; i < imageTokens[image]; i++) inputIds.push(id);
        image++;
      } else {
        inputIds.push(id);
      }
    }
    return { inputIds, renderedPrompt, padAt: 0 };
  }

  private encodeQueryPrefix(prompt: string, imageTokens: readonly number[]): EncodedPrompt {
    if (imageTokens.length > 1) {
      throw new InvalidGenerationRequestError(`this model takes one image per prompt (${imageTokens.length} were given)`);
    }
    const text = this.tokenizer.encode(prompt, { add_special_tokens: true }).ids;
    if (this.countPlaceholders(text) > 0) {
      throw new InvalidGenerationRequestError('a prompt may not contain the image token itself');
    }
    const queries = imageTokens.length === 1 ? new Array<number>(imageTokens[0]).fill(this.options.imageTokenIndex) : [];
    return { inputIds: [...queries, ...text], renderedPrompt: prompt, padAt: queries.length };
  }

  /** The tokens of plain text as the model writes it in an answer (no template, no special tokens). */
  encodeAnswer(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
  }
}
