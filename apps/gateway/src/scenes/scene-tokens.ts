/** Injection token of the SceneService (scenes.service.ts), built by createGatewayApp on its Redis connection. */
export const SCENE_SERVICE = Symbol('SCENE_SERVICE');
