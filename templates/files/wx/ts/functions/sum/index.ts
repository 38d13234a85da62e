interface SumEvent {
  a: unknown
  b: unknown
}

// Adds two numbers: wx.cloud.callFunction({ name: 'sum', data: { a: 1, b: 2 } })
export const main = async (event: SumEvent): Promise<Record<string, number>> => {
  const { a, b } = event
  if (typeof a !== 'number' || typeof b !== 'number') {
    throw new Error('sum needs two numbers, a and b')
  }
  return { [process.env.SUM_LABEL || 'sum']: a + b }
}
