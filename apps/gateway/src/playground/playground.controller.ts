import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Controller, Get, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { ERROR_CODES, GatewayError } from '../errors/gateway-error';
import type { HttpResponse } from '../http/http-types';

/** The playground's files beside this one, and their media types: served as they are (no build step). */
const ASSETS: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'playground.js': 'text/javascript; charset=utf-8',
  'playground.css': 'text/css; charset=utf-8',
};

/** Paths of the playground, public like the API docs: the page asks for an API key itself. */
export function isPlaygroundPath(path: string): boolean {
  return path === '/' || path.startsWith('/playground/');
}

/**
 * The web playground at `/`: one HTML page, one plain script and one stylesheet, read once at start. The page
 * uses the public HTTP API (GET /v1/experts; the task endpoints as server-sent events; /v1/scenes for a whole
 * scene), so it needs no route of its own beyond these files, and fetches nothing from outside the gateway.
 */
@ApiExcludeController()
@Controller()
export class PlaygroundController {
  private readonly files = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(join(__dirname, name))]));

  @Get()
  page(@Res() res: HttpResponse): void {
    this.send('index.html', res);
  }

  @Get('playground/:file')
  asset(@Param('file') file: string, @Res() res: HttpResponse): void {
    if (file === 'index.html' || !this.files.has(file)) throw new GatewayError(404, ERROR_CODES.notFound, `no playground file ${file}`);
    this.send(file, res);
  }

  private send(name: string, res: HttpResponse): void {
    res.setHeader('Content-Type', ASSETS[name]!);
    res.setHeader('Cache-Control', 'no-cache');
    res.status(200).end(this.files.get(name));
  }
}
