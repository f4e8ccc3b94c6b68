/** File extensions read as images by the folder-based adapters (case-insensitive). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp', '.webp'];

/** True for a visible file whose extension is one of `IMAGE_EXTENSIONS`. */
export function isImageFile(name: string): boolean {
  if (name.startsWith('.')) return false;
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}
