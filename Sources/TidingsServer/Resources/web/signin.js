// Signing in on both pages: a token from the address's fragment, from an earlier visit, or
// pasted into the form; its role checked here for a clear message, its signature by the server.

import { takeTokenFromAddress, tokenClaims } from "./pages.js";
import { TidingsError } from "./tidings.js";

const $ = (id) => document.getElementById(id);

/**
 * Wires the page's sign-in form (`#sign-in-form`, `#token`, `#sign-in-error`, `#sign-out`).
 *
 * @param storageKey  where the token is kept between visits
 * @param roles       the roles this page takes
 * @param wrongRole   (role) => the sentence for a token of another role
 * @param probe       async (token, claims) => throws a TidingsError when the server refuses the token
 * @param open        (token, claims) => shows the page for the signed-in user
 * @param close       () => hides the page (before the form shows)
 * @returns signOut(message): forgets the token and shows the form again
 */
export function setUpSignIn({ storageKey, roles, wrongRole, probe, open, close }) {
  const checked = (token) => {
    const claims = tokenClaims(token);
    if (!roles.includes(claims.role)) throw new Error(wrongRole(claims.role));
    return claims;
  };

  const showForm = (message) => {
    close();
    $("sign-out").hidden = true;
    $("who").textContent = "";
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message;
    $("token").focus();
  };

  const enter = (token, claims) => {
    $("sign-in").hidden = true;
    $("sign-out").hidden = false;
    $("who").textContent = `Signed in as ${claims.sub} (${claims.role})`;
    open(token, claims);
  };

  const signOut = (message = "") => {
    localStorage.removeItem(storageKey);
    showForm(message);
  };

  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("sign-in-error").textContent = "";
    try {
      const claims = checked(token);
      // Asked once here, so a wrong token is refused on the form rather than later.
      await probe(token, claims);
      localStorage.setItem(storageKey, token);
      $("token").value = "";
      enter(token, claims);
    } catch (error) {
      $("sign-in-error").textContent = error instanceof TidingsError ? error.text : error.message;
      $("token").focus();
    }
  });
  $("sign-out").addEventListener("click", () => signOut());
  // Signing out in one tab signs out the others.
  addEventListener("storage", (event) => {
    if (event.key === storageKey && event.newValue === null && $("sign-in").hidden) signOut("Signed out in another tab.");
  });

  const handed = takeTokenFromAddress();
  const token = handed ?? localStorage.getItem(storageKey);
  if (!token) {
    showForm("");
  } else {
    try {
      const claims = checked(token);
      if (handed) localStorage.setItem(storageKey, handed);
      // A kept token opens the page at once; if the server refuses it, the page signs out.
      enter(token, claims);
    } catch (error) {
      signOut(error.message);
    }
  }
  return signOut;
}
