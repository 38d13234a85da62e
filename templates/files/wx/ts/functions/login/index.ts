import cloud = require('wx-server-sdk')

// API calls stay in the environment the function runs in.
cloud.init({
  env: cloud.DYNAMIC_CURRENT_ENV as any,
})

interface LoginResult {
  event: Record<string, unknown>
  openid?: string
  appid?: string
  unionid?: string
  env?: string
}

/**
 * Returns the caller's openid to the mini-program.
 *
 * event holds the data passed by wx.cloud.callFunction, plus userInfo when a mini-program user calls.
 */
export const main = async (event: Record<string, unknown>, context: Record<string, unknown>): Promise<LoginResult> => {
  console.log('event', event)
  console.log('context', context)

  // WX Context: OPENID, APPID and UNIONID (when the unionid conditions are met) of the caller.
  const wxContext = cloud.getWXContext()

  return {
    event,
    openid: wxContext.OPENID,
    appid: wxContext.APPID,
    unionid: wxContext.UNIONID,
    env: wxContext.ENV,
  }
}
