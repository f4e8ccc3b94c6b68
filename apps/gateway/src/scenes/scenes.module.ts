import { Module, type DynamicModule } from '@nestjs/common';
import { SCENE_SERVICE } from './scene-tokens';
import { ScenesController } from './scenes.controller';
import type { SceneService } from './scenes.service';

/** The scenes endpoints, given their service (built by createGatewayApp on its Redis connection). */
@Module({})
export class ScenesModule {
  static forRoot(service: SceneService): DynamicModule {
    return { module: ScenesModule, controllers: [ScenesController], providers: [{ provide: SCENE_SERVICE, useValue: service }] };
  }
}
