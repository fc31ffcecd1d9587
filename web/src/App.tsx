import { useCallback, useEffect, useRef, useState } from "react";
import { AdminPanel } from "./components/AdminPanel.tsx";
import { BurstPanel } from "./components/BurstPanel.tsx";
import { Dashboard } from "./components/Dashboard.tsx";
import { Gallery, type GalleryState } from "./components/Gallery.tsx";
import { Viewer } from "./components/Viewer.tsx";
import { ApiError, fetchImages, type OriginalImage } from "./lib/api.ts";
import { detectImageAccept, FALLBACK_ACCEPT } from "./lib/image-support.ts";

/** sessionStorage key: the token lives as long as the tab, never in localStorage. */
const TOKEN_KEY = "imagika.adminToken";

export function App() {
  const [gallery, setGallery] = useState<GalleryState>({ kind: "loading" });
  const [loads, setLoads] = useState(0);
  const [selected, setSelected] = useState<OriginalImage | undefined>();
  const [accept, setAccept] = useState(FALLBACK_ACCEPT);
  const [token, setToken] = useState(() => readToken());
  const opener = useRef<HTMLElement | null>(null);

  useEffect(() => {
    void detectImageAccept().then(setAccept);
  }, []);

  useEffect(() => {
    const controller = new AbortController();
    setGallery({ kind: "loading" });
    fetchImages(controller.signal).then(
      (images) => setGallery({ kind: "ready", images }),
      (error: unknown) => {
        if (controller.signal.aborted) return;
        setGallery({
          kind: "error",
          error:
            error instanceof ApiError
              ? error.description
              : { status: 0, code: undefined, title: "Failed", detail: String(error), retryAfterSeconds: undefined },
        });
      },
    );
    return () => controller.abort();
  }, [loads]);

  const open = useCallback((image: OriginalImage) => {
    opener.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    setSelected(image);
  }, []);

  const close = useCallback(() => setSelected(undefined), []);

  // Back to the tile that opened the viewer, once the modal dialog (which makes the page inert) is gone.
  useEffect(() => {
    if (selected === undefined && opener.current) {
      opener.current.focus();
      opener.current = null;
    }
  }, [selected]);

  const changeToken = (next: string) => {
    setToken(next);
    try {
      sessionStorage.setItem(TOKEN_KEY, next);
    } catch {
      // Storage disabled: the token still works for this page view.
    }
  };

  const images = gallery.kind === "ready" ? gallery.images : [];
  return (
    <div className="app">
      <header className="app__header">
        <h1 className="brand">
          <span className="brand__mark" aria-hidden="true" />
          Imagika
        </h1>
        <p className="app__tagline">High-resolution originals, right-sized on the fly.</p>
        <nav className="app__nav" aria-label="Sections">
          <a href="#gallery">Gallery</a>
          <a href="#dashboard">Dashboard</a>
          <a href="#burst">Burst</a>
          <a href="#admin">Admin</a>
        </nav>
      </header>
      <div className="app__layout">
        <main className="app__main">
          <Gallery state={gallery} onOpen={open} onRetry={() => setLoads((n) => n + 1)} />
        </main>
        <aside className="app__aside" aria-label="Proxy tools">
          <Dashboard />
          <BurstPanel images={images} accept={accept} />
          <AdminPanel token={token} onTokenChange={changeToken} />
        </aside>
      </div>
      {selected ? <Viewer image={selected} accept={accept} adminToken={token} onClose={close} /> : null}
    </div>
  );
}

function readToken(): string {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? "";
  } catch {
    return "";
  }
}
