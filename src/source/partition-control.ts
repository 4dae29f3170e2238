/**
 * The live consumer's control of one partition for one generation (pipeline StreamControl): what
 * is active and committable, how a checkpoint is committed, and how a stalled partition is held
 * (paused), rewound (seek to the first unfinished record) and resumed after its backoff.
 */
import type { Consumer } from 'kafkajs';
import type { Logger } from 'pino';
import type { StreamControl } from '../pipeline.ts';
import { nextOffset } from '../watermark.ts';
import type { PausedPartitions } from './batch-support.ts';
import { describe } from './kafkajs-facts.ts';
import type { Generation } from './membership.ts';

export interface PartitionControlDeps {
  readonly topic: string;
  readonly consumer: Consumer;
  readonly paused: PausedPartitions;
  readonly stopping: () => boolean;
  readonly log: Logger;
  readonly onFatal: (error: unknown) => void;
}

export function partitionControl(partition: number, generation: Generation, d: PartitionControlDeps): StreamControl {
  const topicPartition = [{ topic: d.topic, partitions: [partition] }];
  return {
    isActive: () => !d.stopping() && generation.active,
    canCommit: () => generation.active,
    checkpoint: async (offset) => {
      try {
        await d.consumer.commitOffsets([{ topic: d.topic, partition, offset: nextOffset(offset) }]);
      } catch (error) {
        if (!generation.note(error)) d.log.warn({ partition, err: describe(error) }, 'offset commit failed; the next one carries it');
        throw error;
      }
    },
    hold: () => d.consumer.pause(topicPartition),
    rewind: (offset, delayMs) => {
      // A seek for a partition no longer ours would linger in kafkajs and apply if it came back.
      if (!generation.active || d.stopping()) return;
      d.consumer.seek({ topic: d.topic, partition, offset });
      d.paused.pauseFor(() => () => d.consumer.resume(topicPartition), delayMs);
    },
    fail: (error) => {
      d.consumer.pause(topicPartition);
      d.onFatal(error);
    },
  };
}
