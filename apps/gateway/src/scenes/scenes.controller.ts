import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import { apiKeyOf } from '../http/api-key.middleware';
import type { HttpRequest, HttpResponse } from '../http/http-types';
import type { SceneCaller, SceneService } from './scenes.service';
import { SCENE_SERVICE } from './scene-tokens';

function callerOf(req: HttpRequest): SceneCaller {
  const key = apiKeyOf(req);
  return key === undefined ? {} : { keyId: key.id, ...(key.tasks !== undefined ? { tasks: key.tasks } : {}) };
}

/**
 * Whole scenes: `POST /v1/scenes` (202 + Location), `GET /v1/scenes/{id}` (status, progress, ETA; the result
 * once done), `GET /v1/scenes/{id}/geojson`, `GET /v1/scenes/{id}/preview.png`, `DELETE /v1/scenes/{id}`
 * (cancel, or erase a finished scene).
 */
@Controller('v1/scenes')
export class ScenesController {
  constructor(@Inject(SCENE_SERVICE) private readonly scenes: SceneService) {}

  @Post()
  @HttpCode(202)
  async submit(@Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    try {
      const answer = await this.scenes.submit(req, callerOf(req));
      res.setHeader('Location', answer.links.self);
      return answer;
    } catch (error) {
      // Refused before the whole upload arrived: the rest is read off and dropped, then the connection closes.
      if (!req.complete) res.setHeader('Connection', 'close');
      throw error;
    }
  }

  @Get(':id')
  async describe(@Param('id') id: string, @Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    const answer = await this.scenes.describe(id, callerOf(req));
    if (answer.status === 'queued' || answer.status === 'running' || answer.status === 'stitching') res.setHeader('Retry-After', '1');
    return answer;
  }

  @Get(':id/geojson')
  async geojson(@Param('id') id: string, @Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    const collection = await this.scenes.artefact(id, callerOf(req), 'geojson');
    res.setHeader('Content-Type', 'application/geo+json');
    return JSON.stringify(collection);
  }

  @Get(':id/preview.png')
  async preview(@Param('id') id: string, @Req() req: HttpRequest, @Res() res: HttpResponse): Promise<void> {
    const png = (await this.scenes.artefact(id, callerOf(req), 'preview')) as Buffer;
    res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': png.length });
    res.end(png);
  }

  @Delete(':id')
  async cancel(@Param('id') id: string, @Req() req: HttpRequest, @Res({ passthrough: true }) res: HttpResponse): Promise<unknown> {
    const outcome = await this.scenes.cancel(id, callerOf(req));
    if (outcome === 'erased') {
      res.status(204);
      return undefined;
    }
    res.status(202);
    return { sceneId: id, status: 'cancelled' };
  }
}
