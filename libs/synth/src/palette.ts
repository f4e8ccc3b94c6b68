import type { Rgb } from './raster';
import type { ColourName } from './scene.types';

export const PALETTE: Record<ColourName, Rgb> = {
  red: [170, 70, 55],
  grey: [140, 140, 138],
  'dark grey': [80, 82, 85],
  white: [225, 225, 220],
  brown: [125, 90, 60],
  blue: [55, 95, 150],
  'dark blue': [30, 55, 95],
  green: [70, 125, 55],
  'dark green': [35, 75, 35],
  'light green': [125, 165, 85],
  yellow: [200, 180, 95],
  black: [30, 30, 32],
  silver: [185, 188, 192],
  orange: [200, 120, 60],
};

export const SHADOW: Rgb = [15, 18, 22];
