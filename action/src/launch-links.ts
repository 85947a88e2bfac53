import type { ActionInputs } from './read-inputs.js';
import type { BuildEvent } from './read-event-stream.js';
import { specPath } from './spec-path.js';

/** The image a final event names: `imageName` after a build, `image` after a launch. */
export function imageOf(event: BuildEvent): string | undefined {
  const image = event.imageName ?? event.image;
  return typeof image === 'string' ? image : undefined;
}

/**
 * The commit a final event says was built: the last part of `binder_persistent_request` after a
 * launch, else the tag of the image name (`…:<sha>`, the commit for every remote repository).
 */
export function commitOf(event: BuildEvent): string | undefined {
  const persistent = event.binder_persistent_request;
  if (typeof persistent === 'string' && persistent.includes('/')) {
    return decodeURIComponent(persistent.slice(persistent.lastIndexOf('/') + 1));
  }
  const image = imageOf(event);
  const tag = image?.slice(image.lastIndexOf('/') + 1).split(':')[1];
  return tag || undefined;
}

/** `<server>/v2/<provider>/<spec>` pinned to `sha`: the link that launches this build later. */
export const launchUrlFor = (inputs: ActionInputs, sha: string) =>
  `${inputs.server}/v2/${inputs.provider}/${specPath(inputs.provider, inputs.repository, sha)}`;

/** A Binder badge linking to `launchUrl`, with the server's own badge image. */
export const badgeMarkdown = (server: string, launchUrl: string) =>
  `[![Binder](${server}/badge_logo.svg)](${launchUrl})`;
