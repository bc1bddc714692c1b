// aedes-persistence-level ships no types. Only what central/broker/embedded.ts uses: aedes 1 drives the
// rest of the persistence API itself (aedes-persistence's CallBackPersistence over a LevelDB).
declare module 'aedes-persistence-level' {
  interface LevelPersistence {
    setup(broker: unknown): Promise<void>;
    /** Closes the database it was given. */
    destroy(): Promise<void>;
    on(event: 'error', listener: (err: Error) => void): this;
  }
  /** `db`: an abstract-level database (classic-level), opened or not. */
  export default function aedesPersistenceLevel(db: unknown): LevelPersistence;
}
