import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { CliInputError, withInputErrors } from './cli-input';
import { accessOf, gatewayHeaders, refusalMessage, unansweredError, GatewayRequestError, type GatewayAccess, type GatewayDefaults } from './gateway-access';
import { gatewayCommand, listOption, writeOutputFile, type GatewayFlags } from './task-command-kit';

interface SceneFlags extends GatewayFlags {
  tasks: string[];
  phrases?: string[];
  classes?: string[];
  tileSize?: number;
  overlap?: number;
  bands?: string;
  out?: string;
  previewOut?: string;
  poll: number;
}

/** What GET /v1/scenes/{id} answers (the parts the command reads). */
interface SceneAnswer {
  sceneId: string;
  status: 'queued' | 'running' | 'stitching' | 'done' | 'failed' | 'cancelled';
  progress: { tilesTotal: number; tilesDone: number; tilesSkipped: number; tilesFailed: number; etaSeconds?: number };
  width: number;
  height: number;
  error?: { code: string; message: string };
  result?: {
    georeference: { status: string; epsg?: number; message?: string };
    caption?: { text: string };
    grounding?: { boxes: unknown[] };
    segmentation?: { classes: { name: string; areaFraction: number }[] };
    classification?: { shares: { label: string; share: number }[] };
    geojson: unknown;
    failures: { count: number };
  };
}

function integerOption(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('an integer');
  return Number(value);
}

async function call(access: GatewayAccess, path: string, init: RequestInit & { duplex?: 'half' } = {}): Promise<Response> {
  const url = `${access.url.replace(/\/+$/, '')}${path}`;
  let response: Response;
  try {
    response = await fetch(url, { ...init, headers: { ...gatewayHeaders(access), ...(init.headers as Record<string, string> | undefined) } });
  } catch (error) {
    throw unansweredError(access.url, error, 0);
  }
  if (response.status >= 400) {
    const body = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string; requestId?: string } };
    throw new GatewayRequestError(
      response.status,
      body.error?.code ?? 'http_error',
      refusalMessage(response.status, body.error?.message ?? `HTTP ${response.status}`, access.apiKey !== undefined),
      body.error?.requestId,
    );
  }
  return response;
}

/** A redrawn bar on a TTY (tiles done of total, skipped, ETA), a line per 10 % otherwise; on stderr. */
function progressWriter(stream: NodeJS.WriteStream = process.stderr): (answer: SceneAnswer) => void {
  let lastDecile = -1;
  return ({ status, progress }) => {
    const fraction = progress.tilesTotal === 0 ? 1 : progress.tilesDone / progress.tilesTotal;
    const eta = progress.etaSeconds !== undefined ? `, ETA ${progress.etaSeconds} s` : '';
    const text = `scene ${status}: ${progress.tilesDone}/${progress.tilesTotal} tiles (${Math.round(fraction * 100)}%)${progress.tilesSkipped > 0 ? `, ${progress.tilesSkipped} skipped` : ''}${progress.tilesFailed > 0 ? `, ${progress.tilesFailed} with failures` : ''}${eta}`;
    if (stream.isTTY) {
      const width = 30;
      const filled = Math.round(fraction * width);
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}\u001b[K`);
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (decile !== lastDecile) {
      lastDecile = decile;
      stream.write(`${text}\n`);
    }
  };
}

/**
 * `rsmoe scene <file.tif> --tasks caption,segmentation --out result.geojson`: uploads a whole scene (streamed
 * from disk) to POST /v1/scenes, shows its progress until it ends, writes its GeoJSON (and preview).
 */
export function registerSceneCommand(program: Command, gateway: GatewayDefaults = {}): void {
  const command = gatewayCommand(program, 'scene <file>', 'tile a whole GeoTIFF scene through a running gateway and get one georeferenced answer', gateway)
    .requiredOption('--tasks <names>', 'comma-separated: caption, classification, grounding, segmentation', listOption)
    .option('--phrases <list>', 'grounding: comma-separated phrases to find', listOption)
    .option('--classes <list>', "segmentation: comma-separated classes (default: the pack's)", listOption)
    .option('--tile-size <px>', "tile side in scene pixels (default: the pack's model input size)", integerOption)
    .option('--overlap <px>', 'overlap of neighbouring tiles (default: tile size / 8)', integerOption)
    .option('--bands <r,g,b>', '0-based band indices read as red, green, blue (default 0,1,2)')
    .option('--out <geojson>', 'write the GeoJSON FeatureCollection (EPSG:4326 when georeferenced, else pixels)')
    .option('--preview-out <png>', 'write the downsampled preview with the overlays')
    .option('--poll <ms>', 'progress poll interval', integerOption, 1000);
  command.action(
    withInputErrors(command, async (file: string, flags: SceneFlags) => {
      let bytes: number;
      try {
        bytes = (await stat(file)).size;
      } catch (error) {
        throw new CliInputError(`cannot read scene ${file}: ${(error as Error).message}`);
      }
      const access = accessOf(flags);
      const form = new FormData();
      form.append('tasks', flags.tasks.join(','));
      if (flags.phrases) form.append('phrases', JSON.stringify(flags.phrases));
      if (flags.classes) form.append('classes', JSON.stringify(flags.classes));
      if (flags.tileSize !== undefined) form.append('tileSize', String(flags.tileSize));
      if (flags.overlap !== undefined) form.append('overlap', String(flags.overlap));
      if (flags.bands !== undefined) form.append('bands', flags.bands);
      // A file-backed Blob: fetch streams it from disk, the scene is never read whole into memory.
      form.append('scene', await openAsBlob(file), basename(file));
      process.stderr.write(`uploading ${file} (${(bytes / 1024 / 1024).toFixed(1)} MiB)\n`);
      const accepted = (await (await call(access, '/v1/scenes', { method: 'POST', body: form })).json()) as SceneAnswer;
      process.stderr.write(`scene ${accepted.sceneId}: ${accepted.width} × ${accepted.height} px, ${accepted.progress.tilesTotal} tiles\n`);
      const show = progressWriter();
      let answer = accepted;
      // Ctrl-C leaves the scene running on the mesh (its id is printed); DELETE /v1/scenes/{id} cancels it.
      for (;;) {
        show(answer);
        if (answer.status === 'done' || answer.status === 'failed' || answer.status === 'cancelled') break;
        await new Promise((resolve) => setTimeout(resolve, flags.poll));
        answer = (await (await call(access, `/v1/scenes/${accepted.sceneId}`)).json()) as SceneAnswer;
      }
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (flags.json) process.stdout.write(`${JSON.stringify(answer, null, 2)}\n`);
      if (answer.status !== 'done' || answer.result === undefined) {
        throw new GatewayRequestError(0, answer.error?.code ?? `scene_${answer.status}`, `scene ${answer.sceneId} ended ${answer.status}${answer.error ? `: ${answer.error.message}` : ''}`);
      }
      const { result } = answer;
      if (flags.out !== undefined) await writeOutputFile(flags.out, Buffer.from(JSON.stringify(result.geojson)));
      if (flags.previewOut !== undefined) {
        const png = Buffer.from(await (await call(access, `/v1/scenes/${accepted.sceneId}/preview.png`)).arrayBuffer());
        await writeOutputFile(flags.previewOut, png);
      }
      if (flags.json) return;
      const lines = [
        `Scene ${answer.sceneId}: ${answer.width} × ${answer.height} px, ${answer.progress.tilesDone} tiles (${answer.progress.tilesSkipped} skipped, ${result.failures.count} task failures)`,
        result.georeference.status === 'georeferenced' ? `Georeferenced: EPSG:${result.georeference.epsg} (GeoJSON in EPSG:4326)` : `Not georeferenced: ${result.georeference.message ?? 'pixel coordinates'}`,
      ];
      if (result.caption) lines.push(`Caption: ${result.caption.text}`);
      if (result.classification) lines.push(`Classes: ${result.classification.shares.map((s) => `${s.label} ${(s.share * 100).toFixed(0)} %`).join(', ')}`);
      if (result.grounding) lines.push(`Boxes: ${result.grounding.boxes.length}`);
      if (result.segmentation) lines.push(`Area: ${result.segmentation.classes.filter((c) => c.areaFraction > 0).map((c) => `${c.name} ${(c.areaFraction * 100).toFixed(1)} %`).join(', ')}`);
      if (flags.out !== undefined) lines.push(`GeoJSON: ${flags.out}`);
      if (flags.previewOut !== undefined) lines.push(`Preview: ${flags.previewOut}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }),
  );
}
