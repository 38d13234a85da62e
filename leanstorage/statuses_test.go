package leanstorage

import "testing"

func TestFollowersStatusesAndInboxThroughSDK(t *testing.T) {
	t.Parallel()
	svc := newServiceWith(t, Options{})
	r := runSDK(t, svc, `
  const mk = (name) => new AV.User().set({ username: name, password: 'pw' }).signUp()
  const alice = await mk('alice'), bob = await mk('bob'), carol = await mk('carol')
  const as = (u) => ({ sessionToken: u.getSessionToken() })
  await bob.follow(alice, as(bob))
  await carol.follow({ user: alice, attributes: { group: 'friends' } }, as(carol))
  report.followers = (await alice.followerQuery().find(as(alice))).map((u) => ({ [bob.id]: 'bob', [carol.id]: 'carol' })[u.id]).sort()
  const ff = await bob.getFollowersAndFollowees({}, as(bob))
  report.bobFollows = ff.followees.map((u) => u.get('username'))

  const status = new AV.Status(null, 'hello followers')
  await AV.Status.sendStatusToFollowers(status, as(alice))
  const priv = new AV.Status(null, 'just for carol')
  await AV.Status.sendPrivateStatus(priv, carol.id, as(alice))

  const inbox = await AV.Status.inboxQuery(bob).find(as(bob))
  report.bobInbox = inbox.map((s) => [s.get('message'), s.get('source').id === alice.id, s.messageId])
  report.carolPrivate = (await AV.Status.inboxQuery(carol, 'private').find(as(carol))).map((s) => s.get('message'))
  report.bobCount = await AV.Status.countUnreadStatuses(bob, 'default', as(bob))
  await AV.Status.resetUnreadCount(bob, 'default', as(bob))
  report.bobAfterReset = await AV.Status.countUnreadStatuses(bob, 'default', as(bob))
  try { await AV.Status.inboxQuery(bob).find(as(carol)) } catch (e) { report.readOthersInbox = errOf(e) }
  try { await new AV.Object('_Follower').save({ user: carol, follower: bob }, as(bob)) } catch (e) { report.forgedFollower = errOf(e) }
  report.bySource = await AV.Status.statusQuery(alice).count()

  await bob.unfollow(alice, as(bob))
  report.afterUnfollow = await alice.followerQuery().count(as(alice))
  await AV.Status.sendStatusToFollowers(new AV.Status(null, 'second'), as(alice))
  report.bobInboxAfter = (await AV.Status.inboxQuery(bob).find(as(bob))).length
  report.carolInboxAfter = (await AV.Status.inboxQuery(carol).find(as(carol))).map((s) => s.get('message'))

  await alice.updatePassword('pw', 'pw2', as(alice))
  report.newPassword = !!(await AV.User.logIn('alice', 'pw2')).id
  try { await carol.updatePassword('wrong', 'x', as(carol)) } catch (e) { report.wrongOld = errOf(e) }
`)
	c := reportChecks{t, r}
	c.want("followers", []string{"bob", "carol"})
	c.want("bobFollows", []string{"alice"})
	c.want("bobInbox", [][]any{{"hello followers", true, 1}})
	c.want("carolPrivate", []string{"just for carol"})
	c.want("bobCount", map[string]int{"total": 1, "unread": 1})
	c.want("bobAfterReset", map[string]int{"total": 1, "unread": 0})
	c.wantErr("readOthersInbox", 1, "An inbox is read only by its owner.")
	c.wantErr("forgedFollower", 119, "That operation isn't allowed for clients.")
	c.want("bySource", 2)
	c.want("afterUnfollow", 1)
	c.want("bobInboxAfter", 1)
	c.want("carolInboxAfter", []string{"second", "hello followers"})
	c.want("newPassword", true)
	c.wantErr("wrongOld", 210, "The username and password mismatch.")
}
