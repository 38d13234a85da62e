import AV = require('leanengine')

AV.Cloud.define('hello', async () => 'Hello world!')

// Average rating of a movie, computed on the server so that clients never download every review.
AV.Cloud.define('averageStars', async (request) => {
  const { movie } = request.params as { movie?: string }
  const query = new AV.Query('Review')
  query.equalTo('movie', movie)
  const results = await query.find()
  let sum = 0
  for (const review of results) {
    sum += review.get('stars') as number
  }
  return sum / results.length
})

// An error with a code of your own: the client gets {"code": 123, "error": "custom error message"}.
AV.Cloud.define('customErrorCode', async () => {
  throw new AV.Cloud.Error('custom error message', { code: 123 })
})

// A review's comment is truncated to 140 characters before it is saved.
AV.Cloud.beforeSave('Review', async (request) => {
  const comment = request.object.get('comment') as string | undefined
  if (!comment) {
    throw new AV.Cloud.Error('No comment!')
  }
  if (comment.length > 140) {
    request.object.set('comment', comment.substring(0, 137) + '...')
  }
})

// A new comment increments its post's comment count.
AV.Cloud.afterSave('Comment', async (request) => {
  const post = AV.Object.createWithoutData('Post', request.object.get('post').id)
  post.increment('comments')
  await post.save()
})

// An album that still has photos cannot be deleted.
AV.Cloud.beforeDelete('Album', async (request) => {
  const query = new AV.Query('Photo')
  query.equalTo('album', AV.Object.createWithoutData('Album', request.object.id!))
  if ((await query.count()) > 0) {
    throw new AV.Cloud.Error('Can\'t delete album if it still has photos.')
  }
})

// Users on the block list cannot log in.
AV.Cloud.onLogin(async (request) => {
  if (request.currentUser.get('username') === 'noLogin') {
    throw new AV.Cloud.Error('Forbidden')
  }
})

// Called by the log_timer timer in fn.yaml.
AV.Cloud.define('log_timer', async () => {
  console.log('Log in timer.')
})
