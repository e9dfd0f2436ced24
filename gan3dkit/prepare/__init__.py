"""Dataset preparation: raw sources (synthetic scenes, EG3D zips, photo collections) -> gan3dkit LMDB."""
