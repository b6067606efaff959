{
  "targets": [
    {
      "target_name": "dbtap_pcap",
      "sources": ["dbtap_pcap.c"],
      "libraries": ["-lpcap"],
      "cflags": ["-O2", "-Wall", "-Wextra"]
    }
  ]
}
