import { z } from 'zod';
import { PROVIDER_IDS } from '../repos/provider-registry.js';

/** The BullMQ queue every build goes through. */
export const BUILD_QUEUE = 'bindery-builds';

/** A build job: one repository pinned to one commit, named by its image. */
export const buildJobSchema = z.object({
  imageName: z.string().min(1),
  ref: z.string().min(1),
  spec: z.object({
    provider: z.enum(PROVIDER_IDS),
    url: z.string().min(1),
    ref: z.string().min(1),
    buildSlug: z.string().min(1),
    repoLabel: z.string().min(1),
  }),
  /**
   * Set only for a private GitHub repository built for the GitHub App: the worker fetches it
   * with this installation's token, and its log is not shown on the public log page.
   */
  installationId: z.number().int().positive().optional(),
});

export type BuildJob = z.infer<typeof buildJobSchema>;

/**
 * BullMQ job ids may not contain `:` (it separates Redis keys), and an image name has one
 * before its tag; `@` cannot appear in an image name, so the mapping is one-to-one.
 */
export const jobIdFor = (imageName: string) => imageName.replace(/:/g, '@');
