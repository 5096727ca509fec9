// The CSI plugin: placeholder until the plugin issue lands.
return 0;
