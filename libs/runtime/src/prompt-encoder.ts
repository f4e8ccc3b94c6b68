import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelFileError } from './errors';

/** One chat turn's content part, in the shape Hugging Face chat templates expect. */
type ContentPart = { type: 'image' } | { type: 'text'; text: string };

export interface PromptEncoderOptions {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  tokenizerConfigFile: string;
  imageTokenIndex: number;
  imageSeqLength: number;
}

export interface EncodedPrompt {
  /** Token ids with every image placeholder expanded to `imageSeqLength` image tokens. */
  inputIds: number[];
  /** The prompt text after the chat template, before tokenisation. */
  renderedPrompt: string;
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

/**
 * Turns a user prompt into model input ids: applies the model's chat template (Jinja, from
 * tokenizer_config.json), tokenises with the model's tokenizer.json, and expands each image placeholder to
 * the number of positions the vision features occupy.
 */
export class PromptEncoder {
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | undefined;
  private readonly specialTokens: Record<string, string | undefined>;
  /** Experts see the same few templated prompts again and again; encoding them once saves ~0.1 ms a request. */
  private readonly cache = new Map<string, EncodedPrompt>();
  private static readonly CACHE_SIZE = 512;

  constructor(private readonly options: PromptEncoderOptions) {
    try {
      this.tokenizer = new Tokenizer(options.tokenizerJson, options.tokenizerConfig);
    } catch (error) {
      throw new ModelFileError('tokenizer.json', `cannot build the tokenizer: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const chatTemplate = options.tokenizerConfig.chat_template;
    if (chatTemplate !== undefined && typeof chatTemplate !== 'string') {
      throw new ModelFileError(options.tokenizerConfigFile, 'field "chat_template" must be a string');
    }
    try {
      this.template = chatTemplate === undefined ? undefined : new Template(chatTemplate);
    } catch (error) {
      throw new ModelFileError(
        options.tokenizerConfigFile,
        `chat_template does not parse: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.specialTokens = {
      bos_token: specialToken(options.tokenizerConfig, 'bos_token'),
      eos_token: specialToken(options.tokenizerConfig, 'eos_token'),
      pad_token: specialToken(options.tokenizerConfig, 'pad_token'),
      unk_token: specialToken(options.tokenizerConfig, 'unk_token'),
    };
  }

  /**
   * Renders the chat template for one user turn (an optional image, then the text). With `raw`, the prompt
   * is used as given and must already hold the image placeholder where the image goes.
   */
  render(prompt: string, withImage: boolean, raw = false): string {
    if (raw || !this.template) return prompt;
    const content: ContentPart[] = withImage ? [{ type: 'image' }, { type: 'text', text: prompt }] : [{ type: 'text', text: prompt }];
    return this.template.render({
      messages: [{ role: 'user', content }],
      add_generation_prompt: true,
      ...this.specialTokens,
    });
  }

  encode(prompt: string, withImage: boolean, raw = false): EncodedPrompt {
    const key = `${withImage ? 1 : 0}${raw ? 1 : 0}${prompt}`;
    const cached = this.cache.get(key);
    if (cached) return { inputIds: [...cached.inputIds], renderedPrompt: cached.renderedPrompt };
    const encoded = this.encodeUncached(prompt, withImage, raw);
    if (this.cache.size >= PromptEncoder.CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, encoded);
    return { inputIds: [...encoded.inputIds], renderedPrompt: encoded.renderedPrompt };
  }

  private encodeUncached(prompt: string, withImage: boolean, raw: boolean): EncodedPrompt {
    const renderedPrompt = this.render(prompt, withImage, raw);
    const ids = this.tokenizer.encode(renderedPrompt, { add_special_tokens: false }).ids;
    const inputIds: number[] = [];
    for (const id of ids) {
      if (id === this.options.imageTokenIndex) {
        for (let i = 0; i < this.options.imageSeqLength; i++) inputIds.push(id);
      } else {
        inputIds.push(id);
      }
    }
    return { inputIds, renderedPrompt };
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: true });
  }
}
