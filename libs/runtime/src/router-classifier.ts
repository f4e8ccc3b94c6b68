import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';
import { ModelFileError } from './errors';
import { MODEL_FILES } from './model-files';
import { decodeImage, DEFAULT_IMAGE_LIMITS, type ImageLimits } from './image/image-decoder';
import { ImagePreprocessor, parsePreprocessorConfig } from './image/image-preprocessor';
import { OnnxSession } from './onnx-session.adapter';

/** File of a router model directory that describes its classifiers. */
export const ROUTER_MODEL_FILE = 'router.json';

/** One classifier's guess: the label with the highest logit and its softmax probability. */
export interface Classification {
  label: string;
  probability: number;
}

export interface SceneClassification extends Classification {
  /** The words that fill `{scene}` in prompt templates (router.json `scene_hints`), e.g. "dense residential area". */
  hint: string;
}

/** The classifiers are small and run where the router runs: on CPU. */
export interface RouterClassifierOptions {
  intraOpThreads?: number;
  imageLimits?: ImageLimits;
}

interface RouterModelDescription {
  scene: { file: string; labels: string[]; hints: string[]; preprocessor: ImagePreprocessor };
  question: { file: string; labels: string[]; tokenizerFile: string };
}

/**
 * The learned part of the Instruction Router (a pack's `router.model`): a scene classifier over the image
 * (pixel_values -> scene_logits, images prepared by the directory's preprocessor_config.json) and a
 * question-type classifier over the question's tokens (input_ids, attention_mask -> question_type_logits),
 * as described by the directory's router.json.
 */
export class RouterClassifier {
  private constructor(
    private readonly description: RouterModelDescription,
    private readonly sceneSession: OnnxSession,
    private readonly questionSession: OnnxSession,
    private readonly tokenizer: Tokenizer,
    private readonly imageLimits: ImageLimits,
  ) {}

  get sceneLabels(): readonly string[] {
    return this.description.scene.labels;
  }

  get questionLabels(): readonly string[] {
    return this.description.question.labels;
  }

  static async load(dir: string, options: RouterClassifierOptions = {}): Promise<RouterClassifier> {
    const description = await readDescription(dir);
    const sessionOptions = { executionProvider: 'cpu' as const, intraOpThreads: options.intraOpThreads ?? 1 };
    const [sceneSession, questionSession, tokenizerJson] = await Promise.all([
      OnnxSession.open(
        join(dir, description.scene.file),
        {
          inputs: [{ name: 'pixel_values', types: ['float32'], rank: 4 }],
          outputs: [{ name: 'scene_logits', types: ['float32'], rank: 2 }],
        },
        sessionOptions,
      ),
      OnnxSession.open(
        join(dir, description.question.file),
        {
          inputs: [
            { name: 'input_ids', types: ['int64'], rank: 2 },
            { name: 'attention_mask', types: ['int64'], rank: 2 },
          ],
          outputs: [{ name: 'question_type_logits', types: ['float32'], rank: 2 }],
        },
        sessionOptions,
      ),
      readJson(join(dir, description.question.tokenizerFile)),
    ]);
    const tokenizer = new Tokenizer(tokenizerJson as object, {});
    return new RouterClassifier(description, sceneSession, questionSession, tokenizer, options.imageLimits ?? DEFAULT_IMAGE_LIMITS);
  }

  /** The scene class of an encoded image (PNG, JPEG, WebP, TIFF). */
  async classifyScene(image: Uint8Array): Promise<SceneClassification> {
    const { preprocessor, labels, hints } = this.description.scene;
    const decoded = await decodeImage(image, { limits: this.imageLimits });
    const pixels = await preprocessor.toPixelValues(decoded);
    const feeds = { pixel_values: new ort.Tensor('float32', pixels, [1, 3, preprocessor.outputHeight, preprocessor.outputWidth]) };
    const outputs = await this.sceneSession.run(feeds);
    const best = argmaxSoftmax(outputs.scene_logits.data as Float32Array, labels);
    return { ...best, hint: hints[labels.indexOf(best.label)] };
  }

  /** The question type of a question (one of router.json's question labels). */
  async classifyQuestion(question: string): Promise<Classification> {
    const ids = this.tokenizer.encode(question.toLowerCase(), { add_special_tokens: false }).ids;
    // An empty encoding still needs one position for the classifier to pool over.
    const tokens = ids.length > 0 ? ids : [0];
    const inputIds = BigInt64Array.from(tokens, (id) => BigInt(id));
    const mask = new BigInt64Array(tokens.length).fill(ids.length > 0 ? 1n : 0n);
    const outputs = await this.questionSession.run({
      input_ids: new ort.Tensor('int64', inputIds, [1, tokens.length]),
      attention_mask: new ort.Tensor('int64', mask, [1, tokens.length]),
    });
    return argmaxSoftmax(outputs.question_type_logits.data as Float32Array, this.description.question.labels);
  }

  async release(): Promise<void> {
    await Promise.all([this.sceneSession.release(), this.questionSession.release()]);
  }
}

function argmaxSoftmax(logits: Float32Array, labels: readonly string[]): Classification {
  if (logits.length !== labels.length) throw new RangeError(`classifier gave ${logits.length} logits for ${labels.length} labels`);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  let total = 0;
  for (const logit of logits) total += Math.exp(logit - logits[best]);
  return { label: labels[best], probability: 1 / total };
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ModelFileError(file, 'cannot be read (missing file?)', { cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ModelFileError(file, `is not valid JSON: ${(error as Error).message}`);
  }
}

async function readDescription(dir: string): Promise<RouterModelDescription> {
  const file = join(dir, ROUTER_MODEL_FILE);
  const json = await readJson(file);
  const fail = (message: string): never => {
    throw new ModelFileError(file, message);
  };
  const object = (value: unknown, at: string): Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : fail(`${at}: expected an object`);
  const string = (value: unknown, at: string): string => (typeof value === 'string' && value !== '' ? value : fail(`${at}: expected a non-empty string`));
  const strings = (value: unknown, at: string): string[] =>
    Array.isArray(value) && value.length > 0 ? value.map((item, i) => string(item, `${at}[${i}]`)) : fail(`${at}: expected a non-empty array of strings`);

  const root = object(json, '(root)');
  const scene = object(root.scene_classifier, 'scene_classifier');
  const question = object(root.question_classifier, 'question_classifier');
  const labels = strings(scene.labels, 'scene_classifier.labels');
  const hints = scene.scene_hints === undefined ? labels.map((label) => label.replaceAll('_', ' ')) : strings(scene.scene_hints, 'scene_classifier.scene_hints');
  if (hints.length !== labels.length) fail(`scene_classifier.scene_hints: ${hints.length} hints for ${labels.length} labels`);
  const preprocessorFile = join(dir, MODEL_FILES.preprocessorConfig);
  const preprocessor = new ImagePreprocessor(parsePreprocessorConfig(await readJson(preprocessorFile), preprocessorFile));
  return {
    scene: { file: string(scene.file, 'scene_classifier.file'), labels, hints, preprocessor },
    question: {
      file: string(question.file, 'question_classifier.file'),
      labels: strings(question.labels, 'question_classifier.labels'),
      tokenizerFile: string(question.tokenizer, 'question_classifier.tokenizer'),
    },
  };
}
