export type * from "./types.js";
export { MOUNTED_FILE_TIMING } from "./constants.js";
export { readMountedFile } from "./readMountedFile.js";
export { watchMountedFiles } from "./watchMountedFiles.js";
