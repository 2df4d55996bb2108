export interface SimFailure { seed: number; message: string; detail?: string }
export interface SimSuite { name: string; summary: string; defaultSeeds: number; variants?: string[]; runSeed(seed: number, options: { variant?: string }): Promise<SimFailure | null> }
